"""Who helps whom: the transfer matrix of a pairs study and what it says about each task.

``T[a, b]`` = test score of task ``a`` trained together with ``b`` (one shared module) minus its score
trained alone, per seed (same seed = same data split and initialisation), then averaged.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtpeft.study.collect import RunRecord
from mtpeft.study.stats import PairedOutcomes, SeedComparison, compare_over_seeds


@dataclass(frozen=True)
class Transfer:
    tasks: list[str]
    seeds: list[int]
    alone: np.ndarray  # (tasks, seeds) score trained alone
    paired: np.ndarray  # (tasks, tasks, seeds) score of row task trained with column task; nan on the diagonal
    together: np.ndarray  # (tasks, seeds) score in the all-task run; nan where it did not run
    lexical: np.ndarray  # (tasks, seeds) the lexical baseline fitted on the task's training examples; nan: none

    @property
    def per_seed(self) -> np.ndarray:
        """(tasks, tasks, seeds): pair score minus alone score."""
        return self.paired - self.alone[:, None, :]

    @property
    def matrix(self) -> np.ndarray:
        return _nanmean(self.per_seed, axis=2)

    @property
    def spread(self) -> np.ndarray:
        """Std over seeds of each entry (nan with one seed)."""
        return _nanstd(self.per_seed, axis=2)

    @property
    def versus_all(self) -> np.ndarray:
        """(tasks, tasks): pair score minus the all-task (MFT) score."""
        return _nanmean(self.paired - self.together[:, None, :], axis=2)

    def stability(self) -> dict[str, dict[str, float]]:
        """Per task: spread of its alone score over seeds, of its transfer over partners, and the mean gain."""
        out = {}
        for i, task in enumerate(self.tasks):
            row = np.delete(self.matrix[i], i)
            out[task] = {"alone_std_over_seeds": _nanstd(self.alone[i]), "transfer_std_over_partners": _nanstd(row),
                         "mean_transfer": _nanmean(row), "worst_transfer": _nanmin(row)}
        return out

    def pairs(self) -> list[dict[str, float | str | bool]]:
        """Every unordered pair: both directions, their asymmetry, and whether both gain (complementary)."""
        out = []
        for i, a in enumerate(self.tasks):
            for j in range(i + 1, len(self.tasks)):
                ab, ba = float(self.matrix[i, j]), float(self.matrix[j, i])
                out.append({"a": a, "b": self.tasks[j], "a_with_b": ab, "b_with_a": ba, "asymmetry": ab - ba,
                            "complementary": ab > 0 and ba > 0, "conflicting": ab < 0 and ba < 0})
        return out

    def versus_lexical(self) -> dict[str, dict[str, float]]:
        """Per task: the lexical baseline and, against it, the task alone, with its best partner, and in the
        all-task run (means over seeds; positive: the model beats a bag of words)."""
        out = {}
        for i, task in enumerate(self.tasks):
            lexical = _nanmean(self.lexical[i])
            best_pair = _nanmax(np.delete(_nanmean(self.paired[i], axis=1), i))
            out[task] = {"lexical": lexical, "alone_minus_lexical": _nanmean(self.alone[i]) - lexical,
                         "best_pair_minus_lexical": best_pair - lexical,
                         "all_minus_lexical": _nanmean(self.together[i]) - lexical}
        return out

    def negative(self) -> list[str]:
        """Tasks that lose with every partner: train them alone."""
        return [t for i, t in enumerate(self.tasks) if np.all(np.delete(self.matrix[i], i) < 0)]


def transfer(records: list[RunRecord], model: str, method: str) -> Transfer:
    """Read the transfer matrix of one model and method from a study's runs (sft, pair and mft)."""
    chosen = [r for r in records if r.model == model and r.method == method]
    tasks = sorted({t for r in chosen for t in r.tasks})
    seeds = sorted({r.seed for r in chosen})
    index, column = {t: i for i, t in enumerate(tasks)}, {s: k for k, s in enumerate(seeds)}
    alone = np.full((len(tasks), len(seeds)), np.nan)
    paired = np.full((len(tasks), len(tasks), len(seeds)), np.nan)
    together = np.full((len(tasks), len(seeds)), np.nan)
    lexical = np.full((len(tasks), len(seeds)), np.nan)
    for r in chosen:
        k = column[r.seed]
        if r.setting == "sft":
            alone[index[r.tasks[0]], k] = r.score(r.tasks[0])
            lexical[index[r.tasks[0]], k] = np.nan if (value := r.lexical_score(r.tasks[0])) is None else value
        if r.is_pair:
            a, b = r.tasks
            paired[index[a], index[b], k] = r.score(a)
            paired[index[b], index[a], k] = r.score(b)
        if r.setting == "mft":
            for t in r.tasks:
                together[index[t], k] = r.score(t)
    return Transfer(tasks, seeds, alone, paired, together, lexical)


def transfer_tests(records: list[RunRecord], t: Transfer, model: str, method: str) -> list[list[SeedComparison | None]]:
    """Per cell ``[a][b]``: task ``a`` with ``b`` against ``a`` alone, paired on each seed's test examples and
    tested over the seeds (:func:`compare_over_seeds`); None on the diagonal."""
    runs = runs_by_tasks(records, model, method)
    out: list[list[SeedComparison | None]] = []
    for a in t.tasks:
        row: list[SeedComparison | None] = []
        for b in t.tasks:
            layouts = ([[a, b]], [[a]]) if a != b else None
            row.append(None if layouts is None else compare_layouts(runs, [a], *layouts, t.seeds))
        out.append(row)
    return out


def compare_layouts(runs: dict[tuple[tuple[str, ...], int], RunRecord], tasks: list[str], layout_a: list[list[str]],
                    layout_b: list[list[str]], seeds: list[int]) -> SeedComparison:
    """``tasks`` scored under two layouts (each a list of task groups, one shared module per group) over the seeds
    where both ran: the mean of the tasks' metrics, A - B."""
    per_seed = []
    for seed in seeds:
        outcomes = []
        for task in tasks:
            ran = [runs.get((_group_of(task, layout), seed)) for layout in (layout_a, layout_b)]
            if None in ran:
                break
            run_a, run_b = ran
            outcomes.append(PairedOutcomes.from_rows(run_a.metric(task), run_a.predictions(task),
                                                     run_b.predictions(task)))
        else:
            per_seed.append(outcomes)
    return compare_over_seeds(per_seed)


def _group_of(task: str, layout: list[list[str]]) -> tuple[str, ...]:
    return tuple(sorted(next(g for g in layout if task in g)))


def runs_by_tasks(records: list[RunRecord], model: str, method: str) -> dict[tuple[tuple[str, ...], int], RunRecord]:
    """One model and method's runs by (their sorted tasks, seed)."""
    return {(tuple(r.tasks), r.seed): r for r in records if r.model == model and r.method == method}


def model_methods(records: list[RunRecord]) -> list[tuple[str, str]]:
    """The (model, method) combinations that have pair runs."""
    return sorted({(r.model, r.method) for r in records if r.is_pair})


def _nanmean(values: np.ndarray, axis: int | None = None) -> Any:
    with _quiet():
        return np.nanmean(values, axis=axis)


def _nanmin(values: np.ndarray) -> Any:
    with _quiet():
        return np.nanmin(values)


def _nanmax(values: np.ndarray) -> Any:
    with _quiet():
        return np.nanmax(values)


def _nanstd(values: np.ndarray, axis: int | None = None) -> Any:
    with _quiet():
        return np.nanstd(values, axis=axis, ddof=1)


@contextmanager
def _quiet() -> Iterator[None]:
    """numpy warns on all-nan slices; an entry that did not run (or one seed's std) stays nan, the answer."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
