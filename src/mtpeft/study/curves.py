"""Learning curves: test score against training examples per task, beside the lexical baseline's.

A study with ``axes.train_examples`` trains every run at each size (smaller training sets are subsets of
larger ones); each point is one (setting, model, method) at one size, summarised over seeds like the main
tables, with what it cost in wall time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtpeft.io import read_json
from mtpeft.study.analysis import LEXICAL, ScoreRow, grid, lexical_rows, score_rows
from mtpeft.study.collect import RunRecord
from mtpeft.study.efficiency import footprints


@dataclass(frozen=True)
class CurvePoint:
    train_examples: int  # per task (the cap; a task with fewer examples uses all it has)
    row: ScoreRow
    time_s: float  # mean over seeds: wall time of the runs, or the lexical baseline's fit-and-score time


def curve_sizes(study_dir: Path) -> list[int]:
    """The study's ``axes.train_examples`` (from study.json), or [] when it sweeps no training size."""
    path = study_dir / "study.json"
    sizes = read_json(path).get("axes", {}).get("train_examples") if path.is_file() else None
    return sorted(sizes or [])


def learning_curve(records: list[RunRecord], tasks: list[str]) -> list[CurvePoint]:
    """One point per training size and (setting, model, method), plus the lexical baseline per setting."""
    points = []
    for size in sorted({r.train_examples for r in records if r.train_examples is not None}):
        chosen = [r for r in records if r.train_examples == size]
        cells = grid(chosen)
        wall: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for key, footprint in footprints(chosen).items():
            wall[key[:3]].append(footprint.wall_time_s)
        points += [CurvePoint(size, row, float(np.mean(wall[(row.setting, row.model, row.method)])))
                   for row in score_rows(cells, tasks)]
        points += [CurvePoint(size, row, _lexical_time([r for r in chosen if r.setting == row.setting], tasks))
                   for row in lexical_rows(cells, tasks)]
    return points


def _lexical_time(records: list[RunRecord], tasks: list[str]) -> float:
    """Seconds the lexical baseline needs for every task once: per task the mean over the runs that fitted it."""
    per_task: dict[str, list[float]] = defaultdict(list)
    for record in records:
        times = record.ledger.baselines.lexical_fit_time_s
        for task in record.tasks:
            if task in times:
                per_task[task].append(times[task])
    return float(sum(np.mean(per_task[t]) for t in tasks if per_task[t]))


def is_lexical(point: CurvePoint) -> bool:
    return point.row.method == LEXICAL
