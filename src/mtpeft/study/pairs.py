"""`mtpeft pairs`: measure who helps whom, estimate it cheaply, and recommend task groups.

Trains (resumably, like any study) every task alone, every pair of tasks and all tasks together,
then per model and method: the transfer matrix, the cheap affinity estimates of one warm-up on the
first seed (cached under ``affinity/``), their rank correlation with the measured matrix, the best
grouping under each, and data-quality signals. ``train_groups`` also trains the recommended groups.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from mtpeft.errors import RunError
from mtpeft.io import read_json, write_json
from mtpeft.study.affinity import AffinityEstimate, estimate_affinity
from mtpeft.study.collect import RunRecord, collect
from mtpeft.study.config import StudyConfig
from mtpeft.study.data_quality import quality_signals
from mtpeft.study.efficiency import accountings, footprints
from mtpeft.study.execute import run_study
from mtpeft.study.grid import expand
from mtpeft.study.grouping import Grouping, best_grouping
from mtpeft.study.layouts import Layout, all_layouts, versus
from mtpeft.study.stats import SeedComparison
from mtpeft.study.transfer import Transfer, model_methods, transfer, transfer_tests
from mtpeft.tasks import load_task

SETTINGS = ["sft", "pair", "mft"]


@dataclass(frozen=True)
class PairsAnalysis:
    model: str
    method: str
    transfer: Transfer
    estimates: list[AffinityEstimate]  # one per warm-up length asked for
    spearman: dict[str, dict[str, float]]  # estimate -> {rho, p}
    pair_training: dict[str, float]  # flops and train time of the pair runs of one seed (mean over seeds)
    groupings: dict[str, Grouping]  # by what the affinities came from
    tests: list[list[SeedComparison | None]]  # per cell: with the partner vs alone, over seeds
    layouts: list[Layout]  # all alone, every partition into pairs, all in one, and the grouping once trained
    costs: list[dict[str, Any]]  # SFT x N against MFT by every accounting, mean over seeds
    trained_groups: dict[str, Any] | None  # the measured grouping, trained: against all alone and all in one


def run_pairs(study: StudyConfig, max_groups: int = 2, train_groups: bool = False,
              estimate_steps: tuple[int, ...] = (20,), shard_of: tuple[int, int] = (1, 1),
              echo: bool = True) -> list[PairsAnalysis] | None:
    """Train what is missing, then analyse; ``None`` when this shard's part is done but others may not be."""
    study = study.model_copy(update={"axes": study.axes.model_copy(update={"setting": SETTINGS})})
    run_study(study, shard_of, echo=echo)
    if shard_of != (1, 1):
        return None
    records, unfinished = collect(study.study_dir())
    if unfinished:
        raise RunError(f"{study.study_dir()}: unfinished runs {', '.join(unfinished)}; run `mtpeft pairs` again")
    analyses = [_analyse(study, records, model, method, max_groups, estimate_steps, echo)
                for model, method in model_methods(records)]
    if train_groups:
        analyses = [_train_groups(study, a, echo) for a in analyses]
    return analyses


def _analyse(study: StudyConfig, records: list[RunRecord], model: str, method: str, max_groups: int,
             steps: tuple[int, ...], echo: bool) -> PairsAnalysis:
    measured = transfer(records, model, method)
    estimates = [_cached_estimate(study, model, method, n, echo) for n in steps]
    for estimate in estimates:
        if estimate.tasks != measured.tasks:
            raise RunError(f"affinity estimate tasks {estimate.tasks} differ from the study's {measured.tasks}")
    pair_runs = [r for r in records if r.is_pair and r.model == model and r.method == method]
    seeds = max(len({r.seed for r in pair_runs}), 1)
    cost = {"flops": sum(r.ledger.train_info.flops.total for r in pair_runs) / seeds,
            "train_time_s": sum(r.ledger.train_info.train_time_s for r in pair_runs) / seeds}
    sources = {"measured": measured.matrix}
    for e in estimates:
        sources |= {estimate_name("gradient cosine", e, estimates): e.cosine,
                    estimate_name("lookahead (TAG)", e, estimates): e.lookahead}
    return PairsAnalysis(
        model, method, measured, estimates,
        {name: _spearman(matrix, measured.matrix) for name, matrix in sources.items() if name != "measured"},
        cost, {name: best_grouping(np.nan_to_num(matrix), measured.tasks, max_groups)
               for name, matrix in sources.items()},
        transfer_tests(records, measured, model, method), all_layouts(records, measured.tasks, model, method),
        _costs(records, model, method), None)


def _costs(records: list[RunRecord], model: str, method: str) -> list[dict[str, Any]]:
    """SFT x N against MFT by every accounting of :func:`accountings`, each averaged over the seeds with both."""
    prints = footprints([r for r in records if r.setting in ("sft", "mft")])
    per_seed = [accountings(prints[("sft", m, k, seed)], mft) for (setting, m, k, seed), mft in prints.items()
                if setting == "mft" and (m, k) == (model, method) and ("sft", m, k, seed) in prints]
    return [{"accounting": rows[0].name, "unit": rows[0].unit, "sft": float(np.mean([r.sft for r in rows])),
             "mft": float(np.mean([r.mft for r in rows])),
             "saving_percent": float(np.mean([r.saving_percent for r in rows])), "seeds": len(rows)}
            for rows in zip(*per_seed, strict=True)] if per_seed else []


def estimate_name(signal: str, estimate: AffinityEstimate, estimates: list[AffinityEstimate]) -> str:
    """``signal``, with its warm-up length where several were measured."""
    return signal if len(estimates) == 1 else f"{signal}, {estimate.steps} steps"


def _cached_estimate(study: StudyConfig, model: str, method: str, steps: int, echo: bool) -> AffinityEstimate:
    mft = next(r for r in expand(study) if r.setting == "mft" and r.model == model and r.method == method)
    path = study.study_dir() / "affinity" / f"{mft.run_id}-steps{steps}.json"
    if path.is_file():
        saved = read_json(path)
        return AffinityEstimate(saved["tasks"], np.array(saved["cosine"]), np.array(saved["lookahead"]),
                                saved["steps"], saved["time_s"], saved["flops"])
    estimate = estimate_affinity(mft.config, steps, progress=echo)
    write_json(path, {"tasks": estimate.tasks, "cosine": estimate.cosine.tolist(),
                      "lookahead": estimate.lookahead.tolist(), "steps": estimate.steps,
                      "time_s": estimate.time_s, "flops": estimate.flops})
    return estimate


def _spearman(estimate: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Rank correlation over the off-diagonal entries that were measured."""
    mask = ~np.eye(len(measured), dtype=bool) & np.isfinite(measured)
    if mask.sum() < 3:
        return {"rho": float("nan"), "p": float("nan"), "n": int(mask.sum())}
    result = stats.spearmanr(estimate[mask], measured[mask])
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": int(mask.sum())}


def _train_groups(study: StudyConfig, analysis: PairsAnalysis, echo: bool) -> PairsAnalysis:
    """Train the measured grouping's multi-task groups (pairs are reused) and test it, on the macro score over
    seeds, against every task alone and all tasks in one module."""
    grouping = analysis.groupings["measured"]
    multi = [g for g in grouping.groups if len(g) > 1]
    if multi:
        run_study(study.model_copy(update={"groups": multi, "axes": study.axes.model_copy(update={
            "setting": ["group"], "model": [analysis.model], "method": [analysis.method]})}), echo=echo)
    records = collect(study.study_dir())[0]
    layouts = all_layouts(records, analysis.transfer.tasks, analysis.model, analysis.method,
                          {"grouped": grouping.groups})
    named = {layout.label: layout for layout in layouts}
    if "grouped" not in named:
        return replace(analysis, layouts=layouts)
    against = {other: versus(records, named["grouped"], named[other], analysis.model, analysis.method)
               for other in ("all alone", "all in one") if other in named}
    return replace(analysis, layouts=layouts, trained_groups={"groups": grouping.groups, "versus": against})


def data_quality(study: StudyConfig) -> dict[str, Any]:
    """Signals of the study's tasks as the first run sees them (its seed's split and caps)."""
    config = next(r for r in expand(study) if r.setting == "mft").config
    return quality_signals({t.name: load_task(t, config) for t in config.tasks})


def pairs_json(analyses: list[PairsAnalysis], quality: dict[str, Any]) -> dict[str, Any]:
    return {"analyses": [{
        "model": a.model, "method": a.method, "tasks": a.transfer.tasks, "seeds": a.transfer.seeds,
        "transfer": _list(a.transfer.matrix), "transfer_std": _list(a.transfer.spread),
        "transfer_vs_all": _list(a.transfer.versus_all), "versus_lexical": a.transfer.versus_lexical(),
        "stability": a.transfer.stability(),
        "pairs": a.transfer.pairs(), "negative_transfer": a.transfer.negative(),
        "estimates": [{"gradient cosine": _list(e.cosine), "lookahead (TAG)": _list(e.lookahead), "steps": e.steps,
                       "time_s": e.time_s, "flops": e.flops} for e in a.estimates],
        "spearman": a.spearman, "pair_training": a.pair_training,
        "groupings": {k: g.__dict__ for k, g in a.groupings.items()},
        "transfer_tests": [[None if c is None else asdict(c) for c in row] for row in a.tests],
        "layouts": [asdict(layout) | {"modules": layout.modules} for layout in a.layouts], "costs": a.costs,
        "trained_groups": None if a.trained_groups is None else {
            "groups": a.trained_groups["groups"],
            "versus": {k: asdict(v) for k, v in a.trained_groups["versus"].items()}},
    } for a in analyses], "data_quality": quality}


def _list(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in matrix]

