"""Paired tests and intervals, against hand computations and on constructed systems."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mtpeft.evaluate.metrics import classification_scores
from mtpeft.study.stats import PairedOutcomes, bootstrap_p, compare, compare_over_seeds, mcnemar, seed_summary


def test_mcnemar_exact_by_hand() -> None:
    # 10 examples only a gets right, 2 only b: p = 2 * P(X <= 2), X ~ Bin(12, 1/2)
    assert mcnemar(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 2**12)
    assert mcnemar(2, 10) == mcnemar(10, 2)
    assert mcnemar(0, 0) == 1.0


def test_outcomes_align_on_shared_ids_only() -> None:
    def row(label: int, prediction: int) -> dict[str, int]:
        return {"label": label, "prediction": prediction}

    rows_a = {"x": row(1, 1), "y": row(0, 1), "z": row(1, 0)}
    rows_b = {"y": row(0, 0), "z": row(1, 1), "w": row(0, 0)}
    outcomes = PairedOutcomes.from_rows("accuracy", rows_a, rows_b)
    assert len(outcomes) == 2
    a, b = outcomes.scores()
    assert (a[0], b[0]) == (0.0, 1.0)


def test_resampled_f1_equals_the_metric_on_the_resample() -> None:
    rng = np.random.default_rng(1)
    labels, pa, pb = (rng.integers(0, 2, 50) for _ in range(3))
    outcomes = PairedOutcomes("f1", labels, pa, pb)
    index = rng.integers(0, 50, size=(3, 50))
    f1_a, f1_b = outcomes.scores(index)
    for row in range(3):
        assert f1_a[row] == pytest.approx(classification_scores(labels[index[row]], pa[index[row]])["f1"])
        assert f1_b[row] == pytest.approx(classification_scores(labels[index[row]], pb[index[row]])["f1"])


def test_identical_systems_do_not_differ() -> None:
    labels = np.array([0, 1] * 50)
    same = PairedOutcomes("accuracy", labels, labels ^ (np.arange(100) % 7 == 0), labels ^ (np.arange(100) % 7 == 0))
    result = compare(same)
    assert result.delta == 0 and result.p_value == result.p_mcnemar == 1.0 and result.low == result.high == 0


def test_a_clearly_better_classifier_is_significant() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    good = np.where(rng.random(300) < 0.9, labels, 1 - labels)
    poor = np.where(rng.random(300) < 0.6, labels, 1 - labels)
    result = compare(PairedOutcomes("accuracy", labels, good, poor))
    assert result.p_mcnemar < 0.001 and result.p_value < 0.001
    assert 0 < result.low < result.delta < result.high


def test_mrr_has_the_paired_bootstrap_only() -> None:
    rng = np.random.default_rng(0)
    better = 1 / rng.integers(1, 3, 200)
    worse = 1 / rng.integers(1, 20, 200)
    result = compare(PairedOutcomes("mrr", None, better, worse))
    assert np.isnan(result.p_mcnemar) and result.p_value < 0.01 and result.low > 0
    assert result.delta == pytest.approx(better.mean() - worse.mean())
    tie = compare(PairedOutcomes("mrr", None, better, better[::-1].copy()))
    assert tie.low < 0 < tie.high and tie.p_value > 0.05


def test_bootstrap_p_counts_the_far_side() -> None:
    assert bootstrap_p(np.array([1.0, 2.0, 3.0, -1.0])) == 0.5
    assert bootstrap_p(np.array([1.0, 2.0])) == 0.0


def test_seed_summary_t_interval_by_hand() -> None:
    summary = seed_summary([0.5, 0.6, 0.7])
    assert summary["mean"] == pytest.approx(0.6) and summary["std"] == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, df=2)
    assert (summary["low"], summary["high"]) == pytest.approx((0.6 - half, 0.6 + half))
    assert math.isnan(seed_summary([0.5])["std"])


def _generation_rows(predictions: list[str], references: list[str]) -> dict[str, dict]:
    return {str(i): {"id": str(i), "prediction": p, "reference": r}
            for i, (p, r) in enumerate(zip(predictions, references, strict=True))}


@pytest.mark.parametrize("metric", ["bleu", "smoothed_bleu", "exact_match"])
def test_generation_comparison_reproduces_the_corpus_metric(metric):
    from mtpeft.evaluate.generation import generation_scores

    refs = ["return a + b", "if x is None : return 0", "for i in range ( n ) : total += i", "raise ValueError ( msg )"]
    good = ["return a + b", "if x is None : return 0", "for i in range ( n ) : total += i", "raise ValueError ( )"]
    poor = ["return a", "if x : return", "for i in n : pass", "raise"]
    outcomes = PairedOutcomes.from_rows(metric, _generation_rows(good, refs), _generation_rows(poor, refs))
    result = compare(outcomes, samples=500)
    expected = generation_scores(good, refs, None)[metric] - generation_scores(poor, refs, None)[metric]
    assert result.n == 4 and result.delta == pytest.approx(expected)
    assert result.low <= result.delta <= result.high


def test_codebleu_has_no_paired_test():
    rows = _generation_rows(["int a;"], ["int b;"])
    assert compare(PairedOutcomes.from_rows("codebleu", rows, rows)).n == 0


def _seed_outcomes(rng, n, acc_a, acc_b):
    y = rng.integers(0, 2, n)
    return PairedOutcomes("accuracy", y, np.where(rng.random(n) < acc_a, y, 1 - y),
                          np.where(rng.random(n) < acc_b, y, 1 - y))


def test_over_seeds_the_delta_is_the_mean_of_the_seeds_and_the_t_test_sees_them_alone():
    rng = np.random.default_rng(0)
    per_seed = [[_seed_outcomes(rng, 300, 0.75, 0.70)] for _ in range(4)]
    result = compare_over_seeds(per_seed)
    observed = [float(np.subtract(*o.scores())[0]) for (o,) in per_seed]
    assert result.delta == pytest.approx(np.mean(observed))
    assert result.std == pytest.approx(np.std(observed, ddof=1))
    assert result.p_t == pytest.approx(stats.ttest_1samp(observed, 0).pvalue)
    assert result.low <= result.delta <= result.high


def test_over_seeds_a_real_edge_is_found_and_no_edge_mostly_is_not():
    rng = np.random.default_rng(1)
    edge = compare_over_seeds([[_seed_outcomes(rng, 400, 0.80, 0.70)] for _ in range(3)])
    assert edge.significant and edge.low > 0
    found = sum(compare_over_seeds([[_seed_outcomes(rng, 200, 0.7, 0.7)] for _ in range(3)], seed=k).significant
                for k in range(40))
    assert found <= 6  # about 5% of 40 under the null; a test this size should rarely say more


def test_over_seeds_macro_averages_the_tasks_and_widens_with_disagreeing_seeds():
    rng = np.random.default_rng(2)
    steady = [[_seed_outcomes(rng, 300, 0.72, 0.70), _seed_outcomes(rng, 300, 0.72, 0.70)] for _ in range(3)]
    swinging = [[_seed_outcomes(rng, 300, acc, 0.70), _seed_outcomes(rng, 300, acc, 0.70)]
                for acc in (0.60, 0.72, 0.84)]
    a, b = compare_over_seeds(steady), compare_over_seeds(swinging)
    assert b.high - b.low > a.high - a.low  # the seeds' spread is part of the interval


def test_over_seeds_without_outcomes_is_nan_not_an_error():
    assert np.isnan(compare_over_seeds([]).delta)
