"""Finished runs compared task by task on the same examples: ``mtpeft compare``.

The questions the results tables ask (is one shared module below one module per task? does an option help? does
the model beat the bag of words?) answered from run directories alone, with the paired tests the studies use: a
bootstrap over examples on the task's own metric (or another of its kind, such as the threshold-free ROC AUC or
average precision of classification tasks), and McNemar's test on per-example correctness for classification.
Run A is compared with the runs B that answer its tasks (one run, or several that split the tasks between them,
such as one single-task run per task), or with the lexical baseline fitted on A's own training examples. The runs
of a group k-fold (``tasks.N.folds``, one run per fold) can be pooled as A: their predictions cover disjoint
examples (every project once, with ``split_by: project``) and are compared with their lexical baselines, pooled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtpeft.errors import RunError
from mtpeft.evaluate.metrics import RANKING
from mtpeft.run.files import RunFiles
from mtpeft.run.schema import Metrics, read_metrics
from mtpeft.study.analysis import LEXICAL
from mtpeft.study.collect import read_predictions
from mtpeft.study.stats import Comparison, PairedOutcomes, compare
from mtpeft.tasks.spec import METRIC_NAMES, TaskKind

SPLITS = ("validation", "test")
COMPARABLE: dict[TaskKind, tuple[str, ...]] = {
    kind: names + (tuple(RANKING) if kind in (TaskKind.BINARY, TaskKind.PAIR) else ())
    for kind, names in METRIC_NAMES.items()
}
"""What each kind of task can be compared by: its metrics, and the ranking metrics of classification."""


@dataclass(frozen=True)
class TaskComparison:
    """One task: both systems' metric on the examples they share, and the paired test of the difference."""

    task: str
    metric: str
    b_source: str  # the run directory that answered for B, or "lexical"
    a: float
    b: float
    paired: Comparison
    examples_a: int
    examples_b: int

    def as_json(self) -> dict[str, Any]:
        p = self.paired
        return {"task": self.task, "metric": self.metric, "b_source": self.b_source, "a": self.a, "b": self.b,
                "n": p.n, "examples_a": self.examples_a, "examples_b": self.examples_b, "delta": p.delta,
                "low": p.low, "high": p.high, "p_bootstrap": p.p_value, "p_mcnemar": p.p_mcnemar}


@dataclass(frozen=True)
class RunComparison:
    a: Path
    b: list[Path]  # empty: against A's lexical baseline
    split: str
    tasks: list[TaskComparison]
    skipped: dict[str, str]  # task -> why it has no row
    folds: list[Path] = field(default_factory=list)  # A's pooled fold runs (A is the first), or empty

    @property
    def macro(self) -> tuple[float, float]:
        """Mean over the compared tasks of A's and of B's metric (no test: the tasks' metrics differ)."""
        if not self.tasks:
            return float("nan"), float("nan")
        return float(np.mean([t.a for t in self.tasks])), float(np.mean([t.b for t in self.tasks]))

    def as_json(self) -> dict[str, Any]:
        macro_a, macro_b = self.macro
        return {"a": str(self.a), "b": [str(p) for p in self.b] or LEXICAL, "split": self.split,
                "tasks": [t.as_json() for t in self.tasks], "macro": {"a": macro_a, "b": macro_b},
                "skipped": self.skipped, "folds": [str(p) for p in self.folds]}


def compare_runs(a: Path | Sequence[Path], b: Sequence[Path] = (), split: str = "test", seed: int = 0,
                 metric: str | None = None) -> RunComparison:
    """Compare run ``a`` with the runs ``b`` on every task ``a`` shares with one of them (with no ``b``: with the
    lexical baseline fitted on ``a``'s training examples), by each task's main metric or by ``metric`` (tasks
    that do not have it are skipped). Several runs as ``a`` are the folds of one cross-validation, pooled."""
    if split not in SPLITS:
        raise RunError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")
    known = {name for names in COMPARABLE.values() for name in names}
    if metric is not None and metric not in known:
        raise RunError(f"--metric {metric!r}: expected one of {', '.join(sorted(known))}")
    folds = [a] if isinstance(a, Path) else list(a)
    if len(folds) > 1 and b:
        raise RunError("pooled folds are compared with their own lexical baselines; give no runs B with them")
    a = folds[0]
    metrics_a = _finished_metrics(a)
    fold_metrics = [(a, metrics_a)] + [(run, _same_tasks(run, a, metrics_a)) for run in folds[1:]]
    answering = _answering_runs(a, metrics_a, list(b))
    rows, skipped = [], {}
    for task, task_metrics in metrics_a.tasks.items():
        if b and task not in answering:
            skipped[task] = "no compared run has this task"
            continue
        compared = metric or task_metrics.metric
        if compared not in COMPARABLE[TaskKind(task_metrics.kind)]:
            skipped[task] = f"a {task_metrics.kind} task has no {compared}"
            continue
        rows_a = _pooled(fold_metrics, task, split)
        if not b:
            if any(m.tasks[task].lexical is None or m.tasks[task].lexical_main(split) is None for _, m in fold_metrics):
                skipped[task] = "the run has no lexical baseline for this task"
                continue
            source, rows_b = LEXICAL, _pooled(fold_metrics, task, split, f".{LEXICAL}")
        else:
            run_b, metrics_b = answering[task]
            if metric is None and metrics_b.tasks[task].metric != task_metrics.metric:
                raise RunError(f"{run_b}: task {task!r} is scored by {metrics_b.tasks[task].metric}, "
                               f"{a} scores it by {task_metrics.metric}; the runs cannot be compared on it")
            source, rows_b = str(run_b), _predictions(run_b, metrics_b, task, split)
        outcomes = PairedOutcomes.from_rows(compared, rows_a, rows_b)
        if len(outcomes) == 0:
            raise RunError(f"{a} and {source}: no {split} example of task {task!r} in common (different data or "
                           "splits); a paired test needs the same examples")
        score_a, score_b = outcomes.scores()
        rows.append(TaskComparison(task, compared, source, float(score_a[0]), float(score_b[0]),
                                   compare(outcomes, seed=seed), len(rows_a), len(rows_b)))
    if not rows:
        raise RunError("nothing to compare: " + "; ".join(f"{task}: {why}" for task, why in skipped.items()))
    return RunComparison(a, list(b), split, rows, skipped, folds if len(folds) > 1 else [])


def _finished_metrics(run_dir: Path) -> Metrics:
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    if not RunFiles(run_dir).is_recorded():
        raise RunError(f"{run_dir}: not a finished run (run.json does not mark it complete); finish it with "
                       f"`mtpeft train {RunFiles(run_dir).config} --resume`")
    return read_metrics(RunFiles(run_dir).metrics)


def _same_tasks(run: Path, first: Path, metrics_first: Metrics) -> Metrics:
    """A fold's metrics, refused unless it has the first fold's tasks scored the same way."""
    metrics = _finished_metrics(run)
    mine = {task: m.metric for task, m in metrics.tasks.items()}
    theirs = {task: m.metric for task, m in metrics_first.tasks.items()}
    if mine != theirs:
        raise RunError(f"{run}: tasks and metrics {mine} differ from {first}'s {theirs}; pooled folds must be runs "
                       "of one config")
    return metrics


def _pooled(fold_metrics: list[tuple[Path, Metrics]], task: str, split: str, suffix: str = "",
            ) -> dict[str, dict[str, Any]]:
    """The prediction rows of ``task`` from every fold run; folds must not share an example."""
    rows: dict[str, dict[str, Any]] = {}
    for run, metrics in fold_metrics:
        fold_rows = _predictions(run, metrics, task, split, suffix)
        shared = rows.keys() & fold_rows.keys()
        if shared:
            raise RunError(f"{run}: {len(shared)} {split} examples of task {task!r} are also in an earlier fold "
                           f"(e.g. {min(shared)!r}); pooled runs must be the folds of one split (tasks.N.fold)")
        rows.update(fold_rows)
    return rows


def _answering_runs(a: Path, metrics_a: Metrics, b: list[Path]) -> dict[str, tuple[Path, Metrics]]:
    """For each task of ``a``, the one run of ``b`` that has it; two runs with the same task are ambiguous."""
    answering: dict[str, tuple[Path, Metrics]] = {}
    for run_b in b:
        metrics_b = _finished_metrics(run_b)
        for task in metrics_b.tasks:
            if task in answering:
                raise RunError(f"{answering[task][0]} and {run_b} both have task {task!r}; compare {a} with one "
                               "of them at a time")
            if task in metrics_a.tasks:
                answering[task] = (run_b, metrics_b)
    return answering


def _predictions(run_dir: Path, metrics: Metrics, task: str, split: str, suffix: str = "",
                 ) -> dict[str, dict[str, Any]]:
    """The run's prediction rows of ``task`` on ``split`` (``suffix`` ".lexical": its lexical baseline's)."""
    scored = metrics.tasks[task].splits()
    if split not in scored:  # a prompting run scores one split; `mtpeft eval --split all` another
        raise RunError(f"{run_dir}: task {task!r} has no {split} scores (it has {', '.join(scored) or 'none'}); "
                       "choose another --split")
    return read_predictions(run_dir, task, split + suffix)
