"""Paired significance tests and intervals for comparing two runs on the same test examples.

Any metric (accuracy, F1, MRR, BLEU): a paired bootstrap that resamples test examples (queries) and
recomputes the metric for both systems on the same resample (ROC AUC and average precision from the two systems'
probabilities). Classification by decisions also gets McNemar's exact test on per-example correctness (the
discordant pairs follow Binomial(b + c, 1/2) under the null).
Generation metrics that are means over examples (smoothed BLEU, exact match, parse rate) resample
per-example scores; corpus BLEU resamples its sufficient statistics; CodeBLEU has no paired test here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mtpeft.errors import RunError
from mtpeft.evaluate.generation import (
    bleu_from_statistics,
    bleu_statistics,
    exact_match,
    parse_rate,
    sentence_smoothed_bleu,
)
from mtpeft.evaluate.metrics import RANKING, scores_from_confusion

BOOTSTRAP_SAMPLES = 2000


def _exact(prediction: str, reference: str) -> float:
    return float(exact_match([prediction], [reference]))


def _parses(prediction: str, _reference: str) -> float:
    return parse_rate([prediction])


PER_EXAMPLE_GENERATION = {"smoothed_bleu": sentence_smoothed_bleu, "exact_match": _exact, "parses": _parses}


@dataclass(frozen=True)
class PairedOutcomes:
    """What two systems got on the same examples: labels and predictions (or probabilities, for a ranking metric),
    or reciprocal ranks."""

    metric: str
    labels: np.ndarray | None  # (n,) 0/1; None for retrieval and generation
    a: np.ndarray  # (n,) predictions (0/1), probabilities, reciprocal ranks or per-example scores; (n, 10) BLEU
    b: np.ndarray

    @classmethod
    def from_rows(cls, metric: str, rows_a: dict[str, dict[str, Any]], rows_b: dict[str, dict[str, Any]],
                  ) -> PairedOutcomes:
        """Align two runs' prediction rows on the example ids they share."""
        ids = sorted(set(rows_a) & set(rows_b))
        if metric == "mrr":
            return cls(metric, None, np.array([1 / rows_a[i]["rank"] for i in ids]),
                       np.array([1 / rows_b[i]["rank"] for i in ids]))
        if metric == "codebleu":  # not decomposable into per-example parts: no paired test
            return cls(metric, None, np.empty(0), np.empty(0))
        if metric in RANKING:
            return cls(metric, np.array([rows_a[i]["label"] for i in ids], dtype=int),
                       _probabilities(rows_a, ids, metric), _probabilities(rows_b, ids, metric))
        if metric in PER_EXAMPLE_GENERATION or metric == "bleu":
            score = PER_EXAMPLE_GENERATION.get(metric, bleu_statistics)
            return cls(metric, None,
                       np.array([score(rows_a[i]["prediction"], rows_a[i]["reference"]) for i in ids]),
                       np.array([score(rows_b[i]["prediction"], rows_b[i]["reference"]) for i in ids]))
        return cls(metric, np.array([rows_a[i]["label"] for i in ids], dtype=int),
                   np.array([rows_a[i]["prediction"] for i in ids], dtype=int),
                   np.array([rows_b[i]["prediction"] for i in ids], dtype=int))

    def __len__(self) -> int:
        return len(self.a)

    @property
    def decisions(self) -> bool:
        """Both systems' answers are 0/1 decisions on labelled examples (what McNemar's test counts)."""
        return self.labels is not None and self.metric not in RANKING

    def concat(self, other: PairedOutcomes) -> PairedOutcomes:
        labels = None if self.labels is None else np.concatenate([self.labels, other.labels])
        return PairedOutcomes(self.metric, labels, np.concatenate([self.a, other.a]), np.concatenate([self.b, other.b]))

    def scores(self, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The metric of a and b on the examples ``index`` selects (rows of a 2-d index: one resample each)."""
        index = np.arange(len(self))[None, :] if index is None else np.atleast_2d(index)
        if self.metric == "bleu":
            return bleu_from_statistics(self.a[index].sum(axis=1)), bleu_from_statistics(self.b[index].sum(axis=1))
        if self.labels is None:
            return self.a[index].mean(axis=1), self.b[index].mean(axis=1)
        if self.metric in RANKING:
            ranking = RANKING[self.metric]
            return ranking(self.labels[index], self.a[index]), ranking(self.labels[index], self.b[index])
        return self._classification(self.a, index), self._classification(self.b, index)

    def _classification(self, predictions: np.ndarray, index: np.ndarray) -> np.ndarray:
        y, p = self.labels[index], predictions[index]
        counts = [((y == t) & (p == q)).sum(axis=1) for t, q in ((1, 1), (0, 1), (1, 0), (0, 0))]
        return scores_from_confusion(*counts)[self.metric]


@dataclass(frozen=True)
class Comparison:
    n: int
    delta: float  # metric(a) - metric(b) on the paired examples
    low: float  # 95% bootstrap interval of the delta
    high: float
    p_value: float  # paired bootstrap on the task's metric itself
    p_mcnemar: float  # McNemar on per-example correctness (classification decisions; nan otherwise)


def compare(outcomes: PairedOutcomes, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> Comparison:
    """Delta a - b with a bootstrap interval and p-value on the metric; McNemar's p for classification.

    The two tests can disagree on F1 tasks: McNemar counts examples one system gets right and the
    other wrong (accuracy), while a rare-positive F1 may not move at all.
    """
    n = len(outcomes)
    if n == 0:
        return Comparison(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
    score_a, score_b = outcomes.scores()
    rng = np.random.default_rng(seed)
    boot_a, boot_b = outcomes.scores(rng.integers(0, n, size=(samples, n)))
    deltas = boot_a - boot_b
    low, high = np.percentile(deltas, [2.5, 97.5])
    p_mcnemar = float("nan")
    if outcomes.decisions:
        correct_a, correct_b = outcomes.a == outcomes.labels, outcomes.b == outcomes.labels
        p_mcnemar = mcnemar(int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum()))
    return Comparison(n, float(score_a[0] - score_b[0]), float(low), float(high), bootstrap_p(deltas), p_mcnemar)


def _probabilities(rows: dict[str, dict[str, Any]], ids: list[str], metric: str) -> np.ndarray:
    try:
        return np.array([rows[i]["probability"] for i in ids], dtype=float)
    except KeyError:
        raise RunError(f"{metric} needs each example's probability, and these predictions have none") from None


def mcnemar(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts.

    Example:
        >>> round(mcnemar(10, 2), 4), mcnemar(3, 3)
        (0.0386, 1.0)
    """
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def bootstrap_p(deltas: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from bootstrap deltas (share on the far side of 0, doubled)."""
    far = min((deltas <= 0).mean(), (deltas >= 0).mean())
    return float(min(1.0, 2 * far))


def seed_summary(values: list[float]) -> dict[str, float]:
    """Mean, sample std and 95% t-interval over seeds (std and interval need two or more)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return {"mean": mean, "std": float("nan"), "low": float("nan"), "high": float("nan"), "n": len(array)}
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(array) - 1) * std / np.sqrt(len(array)))
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "n": len(array)}


@dataclass(frozen=True)
class SeedComparison:
    """A - B over seeds, each seed scored on its own test examples (a seed is a split, a sample and a start)."""

    seeds: int
    delta: float  # mean over seeds of metric(a) - metric(b)
    std: float  # its std over seeds
    low: float  # 95% interval of the two-level bootstrap (seeds, then each seed's test examples)
    high: float
    p_value: float  # two-level bootstrap
    p_t: float  # one-sample t-test of the per-seed deltas (needs 2 or more seeds)

    @property
    def significant(self) -> bool:
        """Distinguishable from zero at 5% by the two-level bootstrap, which carries both sources of noise."""
        return bool(self.p_value < 0.05)


def compare_over_seeds(per_seed: list[list[PairedOutcomes]], seed: int = 0,
                       samples: int = BOOTSTRAP_SAMPLES) -> SeedComparison:
    """A - B on the mean of several tasks' metrics (one task: that task's), over seeds.

    ``per_seed[s]`` holds seed ``s``'s outcomes, one per task. The bootstrap draws seeds with replacement, then each
    drawn seed's test examples of every task with replacement, so the interval spans both what changes between seeds
    (initialisation, data sample) and the test sample's own noise; the t-test sees the seeds alone.

    Example (the same small edge on three seeds of 200 examples each):
        >>> rng = np.random.default_rng(1)
        >>> labels = [rng.integers(0, 2, 200) for _ in range(3)]
        >>> seeds = [[PairedOutcomes("accuracy", y, np.where(rng.random(200) < 0.8, y, 1 - y),
        ...                          np.where(rng.random(200) < 0.7, y, 1 - y))] for y in labels]
        >>> result = compare_over_seeds(seeds)
        >>> round(result.delta, 3), result.significant
        (0.088, True)
    """
    if not per_seed or not all(per_seed) or any(len(o) == 0 for outcomes in per_seed for o in outcomes):
        nan = float("nan")
        return SeedComparison(len(per_seed), nan, nan, nan, nan, nan, nan)
    rng = np.random.default_rng(seed)
    observed = np.array([np.mean([float(np.subtract(*o.scores())[0]) for o in outcomes]) for outcomes in per_seed])
    boot = np.zeros((len(per_seed), samples))
    for s, outcomes in enumerate(per_seed):  # each seed's resampled deltas, tasks resampled independently
        for o in outcomes:
            a, b = o.scores(rng.integers(0, len(o), size=(samples, len(o))))
            boot[s] += (a - b) / len(outcomes)
    drawn = rng.integers(0, len(per_seed), size=(samples, len(per_seed)))
    deltas = boot[drawn, np.arange(samples)[:, None]].mean(axis=1)
    low, high = np.percentile(deltas, [2.5, 97.5])
    std = float(observed.std(ddof=1)) if len(observed) > 1 else float("nan")
    p_t = float(stats.ttest_1samp(observed, 0.0).pvalue) if len(observed) > 1 and std > 0 else float("nan")
    return SeedComparison(len(per_seed), float(observed.mean()), std, float(low), float(high), bootstrap_p(deltas), p_t)
