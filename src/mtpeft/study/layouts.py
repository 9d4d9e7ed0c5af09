"""Layouts: partitions of a study's tasks into shared modules, scored from the runs a pairs study trained.

A layout needs one run per group and seed: all alone (the SFT runs), the partitions into pairs (the pair runs),
all in one (the MFT run) and any trained group. Each layout has a macro test score (the mean of its tasks' main
metrics, over seeds), the modules and trainable parameters it takes to serve every task, and its bytes stored;
two layouts are compared on the same examples of every seed (:func:`mtpeft.study.transfer.compare_layouts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtpeft.study.collect import RunRecord
from mtpeft.study.stats import SeedComparison
from mtpeft.study.transfer import compare_layouts, runs_by_tasks


@dataclass(frozen=True)
class Layout:
    label: str
    groups: list[list[str]]
    seeds: list[int]  # those where every group ran
    scores: dict[str, float]  # per task and "macro": test main metric, mean over seeds
    trainable: float  # the layout's trainable parameters (shared modules and heads), mean over seeds
    trainable_percent: float  # of the backbone
    bytes_stored: float  # every module and head, mean over seeds

    @property
    def modules(self) -> int:
        return len(self.groups)


def pair_partitions(tasks: list[str]) -> list[list[list[str]]]:
    """Every partition of an even number of tasks into pairs (3 for four tasks)."""
    if not tasks:
        return [[]]
    first, rest = tasks[0], tasks[1:]
    return [[[first, partner], *others] for partner in rest
            for others in pair_partitions([t for t in rest if t != partner])]


def standard_layouts(tasks: list[str]) -> dict[str, list[list[str]]]:
    """All alone, every partition into pairs, all in one."""
    out = {"all alone": [[t] for t in tasks]}
    if len(tasks) % 2 == 0 and len(tasks) > 2:
        out.update({" | ".join("+".join(g) for g in p): p for p in pair_partitions(tasks)})
    return {**out, "all in one": [list(tasks)]}


def score_layout(records: list[RunRecord], label: str, groups: list[list[str]], model: str,
                 method: str) -> Layout | None:
    """The layout's scores and costs from its runs; None where some group never ran on any seed."""
    runs = runs_by_tasks(records, model, method)
    keys = [tuple(sorted(g)) for g in groups]
    seeds = sorted({seed for _, seed in runs} & set.intersection(*[{s for k, s in runs if k == key} for key in keys]))
    if not seeds:
        return None
    chosen = [[runs[(key, seed)] for key in keys] for seed in seeds]
    tasks = sorted(t for g in groups for t in g)
    per_task = {t: float(np.mean([next(r for r in seed_runs if t in r.tasks).score(t) for seed_runs in chosen]))
                for t in tasks}
    trainable = float(np.mean([sum(r.ledger.parameters.trainable for r in seed_runs) for seed_runs in chosen]))
    backbone = chosen[0][0].ledger.parameters.backbone
    return Layout(label, [list(k) for k in keys], seeds, per_task | {"macro": float(np.mean(list(per_task.values())))},
                  trainable, 100 * trainable / backbone,
                  float(np.mean([sum(r.ledger.storage.bytes_total for r in seed_runs) for seed_runs in chosen])))


def all_layouts(records: list[RunRecord], tasks: list[str], model: str, method: str,
                extra: dict[str, list[list[str]]] | None = None) -> list[Layout]:
    """Every standard layout (and ``extra`` ones, e.g. a recommended grouping) that the runs cover."""
    wanted = standard_layouts(tasks) | (extra or {})
    scored = (score_layout(records, label, groups, model, method) for label, groups in wanted.items())
    return [layout for layout in scored if layout is not None]


def versus(records: list[RunRecord], a: Layout, b: Layout, model: str, method: str) -> SeedComparison:
    """Macro score A - B on the seeds both have, paired on each seed's test examples of every task."""
    tasks = sorted(t for g in a.groups for t in g)
    seeds = sorted(set(a.seeds) & set(b.seeds))
    return compare_layouts(runs_by_tasks(records, model, method), tasks, a.groups, b.groups, seeds)
