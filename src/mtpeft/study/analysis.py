"""Scores per (setting, model, method) over seeds, and paired comparisons between them.

An SFT (setting, model, method, seed) answers each task with that task's own run; an MFT one answers
every task with its single run. Both are looked up the same way: ``Grid[key][task] -> run``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import reduce

import numpy as np

from mtpeft.study.collect import RunRecord
from mtpeft.study.efficiency import Key
from mtpeft.study.stats import Comparison, PairedOutcomes, compare, seed_summary

Grid = dict[Key, dict[str, RunRecord]]


def grid(records: list[RunRecord]) -> Grid:
    out: Grid = defaultdict(dict)
    for record in records:
        for task in record.tasks:
            out[(record.setting, record.model, record.method, record.seed)][task] = record
    return dict(out)


def tasks_of(records: list[RunRecord]) -> list[str]:
    return sorted({t for r in records for t in r.tasks})


@dataclass(frozen=True)
class ScoreRow:
    setting: str
    model: str
    method: str
    seeds: int
    trainable_percent: float
    scores: dict[str, dict[str, float]]  # task -> seed summary of its main test metric
    macro: dict[str, float]  # seed summary of the mean over tasks (seeds where every task ran)


def score_rows(cells: Grid, tasks: list[str]) -> list[ScoreRow]:
    """One row per (setting, model, method): test scores summarised over seeds."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for setting, model, method, seed in cells:
        groups[(setting, model, method)].append(seed)
    rows = []
    for (setting, model, method), seeds in sorted(groups.items()):
        per_seed = [cells[(setting, model, method, s)] for s in sorted(seeds)]
        scores = {t: seed_summary([runs[t].score(t) for runs in per_seed if t in runs])
                  for t in tasks if any(t in runs for runs in per_seed)}
        complete = [runs for runs in per_seed if all(t in runs for t in tasks)]
        macro = seed_summary([float(np.mean([runs[t].score(t) for t in tasks])) for runs in complete]) \
            if complete else {"mean": float("nan"), "std": float("nan"), "n": 0}
        distinct = {r.run_id: r for runs in per_seed for r in runs.values()}.values()  # an MFT run answers N tasks
        percent = float(np.mean([r.ledger.parameters.trainable_percent for r in distinct]))
        rows.append(ScoreRow(setting, model, method, len(seeds), percent, scores, macro))
    return rows


@dataclass(frozen=True)
class DeltaRow:
    """``a - b`` on one task: per-seed deltas summarised, and a paired test pooled over seeds."""

    a: Key  # seed field unused (-1): the row covers every shared seed
    b: Key
    task: str
    metric: str
    seeds: dict[str, float]
    paired: Comparison


def deltas(cells: Grid, tasks: list[str], pairs: list[tuple[Key, Key]]) -> list[DeltaRow]:
    """Compare ``a`` with ``b`` (keys without seed, seed = -1) per task over the seeds both have."""
    rows = []
    for a, b in pairs:
        seeds = sorted({k[3] for k in cells if k[:3] == a[:3]} & {k[3] for k in cells if k[:3] == b[:3]})
        for task in tasks:
            runs = [(cells[(*a[:3], s)].get(task), cells[(*b[:3], s)].get(task)) for s in seeds]
            runs = [(ra, rb) for ra, rb in runs if ra is not None and rb is not None]
            if not runs:
                continue
            metric = runs[0][0].metric(task)
            pooled = reduce(PairedOutcomes.concat, [
                PairedOutcomes.from_rows(metric, ra.predictions(task), rb.predictions(task)) for ra, rb in runs])
            rows.append(DeltaRow(a, b, task, metric,
                                 seed_summary([ra.score(task) - rb.score(task) for ra, rb in runs]),
                                 compare(pooled)))
    return rows


LEXICAL = "lexical"
"""The method name of the lexical baseline's rows in tables."""


def lexical_rows(cells: Grid, tasks: list[str]) -> list[ScoreRow]:
    """Per setting, the lexical baseline fitted on the same training examples as its runs, over seeds.

    Every run of one seed and setting reads the same data, so its lexical score does not depend on the
    model or the method; where several runs answer a task, their (equal) scores are averaged.
    """
    by_setting: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(
        list)))
    for (setting, _, _, seed), runs in cells.items():
        for task, run in runs.items():
            value = run.lexical_score(task)
            if value is not None:
                by_setting[setting][seed][task].append(value)
    rows = []
    for setting, per_seed in sorted(by_setting.items()):
        seeds = sorted(per_seed)
        scores = {t: seed_summary([float(np.mean(per_seed[s][t])) for s in seeds if per_seed[s][t]])
                  for t in tasks if any(per_seed[s][t] for s in seeds)}
        complete = [s for s in seeds if all(per_seed[s][t] for t in tasks)]
        macro = seed_summary([float(np.mean([np.mean(per_seed[s][t]) for t in tasks])) for s in complete]) \
            if complete else {"mean": float("nan"), "std": float("nan"), "n": 0}
        rows.append(ScoreRow(setting, "–", LEXICAL, len(seeds), 0.0, scores, macro))
    return rows


def versus_lexical(cells: Grid, tasks: list[str]) -> list[DeltaRow]:
    """Each (setting, model, method) against the lexical baseline of its own runs, per task: per-seed deltas
    and a paired test on the same test examples (the runs' predictions against the baseline's)."""
    rows = []
    for key in sorted({k[:3] for k in cells}):
        seeds = sorted(k[3] for k in cells if k[:3] == key)
        for task in tasks:
            runs = [run for s in seeds if (run := cells[(*key, s)].get(task)) is not None
                    and run.lexical_score(task) is not None]
            if not runs:
                continue
            metric = runs[0].metric(task)
            pooled = reduce(PairedOutcomes.concat, [PairedOutcomes.from_rows(
                metric, run.predictions(task), run.predictions(task, f"test.{LEXICAL}")) for run in runs])
            rows.append(DeltaRow((*key, -1), (key[0], "–", LEXICAL, -1), task, metric,
                                 seed_summary([run.score(task) - (run.lexical_score(task) or 0.0) for run in runs]),
                                 compare(pooled)))
    return rows


def peft_vs_full(cells: Grid) -> list[tuple[Key, Key]]:
    combos = sorted({k[:3] for k in cells})
    return [((s, m, meth, -1), (s, m, "full", -1)) for s, m, meth in combos
            if meth != "full" and (s, m, "full") in combos]


def mft_vs_sft(cells: Grid) -> list[tuple[Key, Key]]:
    combos = sorted({k[:3] for k in cells})
    return [(("mft", m, meth, -1), ("sft", m, meth, -1)) for s, m, meth in combos
            if s == "mft" and ("sft", m, meth) in combos]
