"""Render `mtpeft pairs` results: pairs.md, pairs.json and the figures (:mod:`mtpeft.study.pairs_plots`) per model
and method."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mtpeft.io import write_json, write_text
from mtpeft.study import pairs_plots
from mtpeft.study.pairs import PairsAnalysis, pairs_json
from mtpeft.study.stats import SeedComparison
from mtpeft.study.tables import Table


def write_pairs_report(study_dir: Path, analyses: list[PairsAnalysis], quality: dict[str, Any]) -> Path:
    write_json(study_dir / "pairs.json", pairs_json(analyses, quality))
    parts = [f"# Task pairing: {study_dir.name}", "",
             "T[a, b] = test score of task a trained together with b (one shared module) minus a trained alone, "
             "per seed, then the mean ± std over seeds. Positive: b helps a.", ""]
    for a in analyses:
        stem = f"{a.model}_{a.method}".replace("/", "_")
        figures = _figures(a, study_dir, stem)
        parts += _analysis_section(a, figures)
    pairs_plots.data_quality(quality, study_dir / "plots" / "data_quality.png")
    parts += ["## Data quality", "", "![data quality](plots/data_quality.png)", "", _quality_table(quality).markdown(),
              "", quality["definition"] + ". Shared inputs across tasks: " + _shared(quality["shared_inputs"]), ""]
    write_text(study_dir / "pairs.md", "\n".join(parts))
    return study_dir / "pairs.md"


def _figures(a: PairsAnalysis, study_dir: Path, stem: str) -> dict[str, str]:
    """Draw every figure of one model and method; their paths relative to the study directory, by name."""
    seeds = ", ".join(map(str, a.transfer.seeds))
    names = {name: f"plots/{name}_{stem}.png" for name in
             ("transfer", "stability", "asymmetry", "complementarity", "layouts")}
    pairs_plots.heatmap(a.transfer, a.tests, study_dir / names["transfer"],
                        f"{a.model} / {a.method}: transfer (seeds {seeds}; * = differs from 0 over seeds and examples)")
    pairs_plots.stability(a.transfer, study_dir / names["stability"])
    pairs_plots.asymmetry(a.transfer, study_dir / names["asymmetry"])
    pairs_plots.complementarity(a.transfer, study_dir / names["complementarity"])
    pairs_plots.layouts(a.layouts, study_dir / names["layouts"])
    return names


def _analysis_section(a: PairsAnalysis, figures: dict[str, str]) -> list[str]:
    tasks, t = a.transfer.tasks, a.transfer
    matrix = Table("transfer", "", ["task \\ partner", *tasks], [
        [row_task, *(_cell(t.matrix[i, j], t.spread[i, j]) + _star(a.tests[i][j]) if i != j else "–"
                     for j in range(len(tasks)))]
        for i, row_task in enumerate(tasks)])
    tests = Table("transfer_tests", "", ["task", "partner", "seeds", "mean", "std over seeds", "95% interval",
                                         "p (seeds x examples)", "p (t over seeds)"],
                  [[tasks[i], tasks[j], c.seeds, _cell(c.delta), c.std, f"[{c.low:+.3f}, {c.high:+.3f}]", c.p_value,
                    c.p_t] for i, row in enumerate(a.tests) for j, c in enumerate(row) if c is not None])
    versus_all = Table("transfer_vs_all", "", ["task \\ partner", *tasks], [
        [row_task, *(_cell(t.versus_all[i, j]) if i != j else "–" for j in range(len(tasks)))]
        for i, row_task in enumerate(tasks)])
    versus_lexical = Table("versus_lexical", "", ["task", "lexical", "alone - lexical", "best pair - lexical",
                                                  "all tasks - lexical"],
                           [[task, v["lexical"], _cell(v["alone_minus_lexical"]), _cell(v["best_pair_minus_lexical"]),
                             _cell(v["all_minus_lexical"])] for task, v in t.versus_lexical().items()])
    stability = Table("stability", "", ["task", "alone: std over seeds", "transfer: std over partners",
                                        "mean transfer", "worst transfer"],
                      [[task, *(v for v in s.values())] for task, s in t.stability().items()])
    pairs = Table("pairs", "", ["a", "b", "T[a,b]", "T[b,a]", "asymmetry", "both gain", "both lose"],
                  [[p["a"], p["b"], p["a_with_b"], p["b_with_a"], p["asymmetry"], _yes(p["complementary"]),
                    _yes(p["conflicting"])] for p in t.pairs()])
    training = a.pair_training
    warmups = Table("warmups", "", ["warm-up steps", "TFLOPs", "s", "share of training every pair once (FLOPs)",
                                    "share (train time)"],
                    [[e.steps, e.flops / 1e12, e.time_s, _percent(_ratio(e.flops, training["flops"])),
                      _percent(_ratio(e.time_s, training["train_time_s"]))] for e in a.estimates])
    estimates = Table("estimates", "", ["estimate", "Spearman rho vs measured", "p", "entries"],
                      [[name, s["rho"], s["p"], s["n"]] for name, s in a.spearman.items()])
    groupings = Table("groupings", "", ["affinities from", "groups", "estimated gain", "search"],
                      [[name, "; ".join("+".join(g) for g in grouping.groups), grouping.gain, grouping.search]
                       for name, grouping in a.groupings.items()])
    layouts = Table("layouts", "", ["layout", "modules", "seeds", *tasks, "macro", "trainable", "trainable %",
                                    "MB stored"],
                    [[x.label, x.modules, len(x.seeds), *(x.scores[task] for task in tasks), x.scores["macro"],
                      f"{x.trainable:,.0f}", x.trainable_percent, x.bytes_stored / 1e6] for x in a.layouts])
    costs = Table("costs", "", ["accounting", "SFT (one module per task)", "MFT (one shared module)", "unit",
                                "MFT saving", "seeds"],
                  [[c["accounting"], f"{c['sft']:,.4g}", f"{c['mft']:,.4g}", c["unit"],
                    _percent(c["saving_percent"] / 100), c["seeds"]] for c in a.costs])
    out = [f"## {a.model} / {a.method}", "", f"![transfer]({figures['transfer']})", "",
           "### Transfer matrix (vs alone)", "", "Mean ± std over seeds; * where the two-level paired bootstrap (seeds "
           "with replacement, then each seed's test examples) puts the 95% interval clear of zero.", "",
           matrix.markdown(), "", tests.markdown(), "",
           "### Pair score minus the all-task (MFT) score", "", versus_all.markdown(), "",
           "### Against the lexical baseline", "", "TF-IDF + logistic regression (BM25 for search) fitted on the "
           "same training examples; negative: a bag of words does better.", "", versus_lexical.markdown(), "",
           "### Stability", "", f"![stability]({figures['stability']})", "", stability.markdown(), "",
           "### Asymmetry and complementarity", "", f"![asymmetry]({figures['asymmetry']})", "",
           f"![complementarity]({figures['complementarity']})", "", pairs.markdown(),
           "", "Train alone (loses with every partner): " + (", ".join(t.negative()) or "none") + ".", "",
           "### Cheap estimates (no pair training)", "",
           "A joint warm-up on the first seed: gradient cosine of the shared parameters and the TAG lookahead, "
           f"against training every pair once ({training['flops'] / 1e12:.1f} TFLOPs, "
           f"{training['train_time_s']:.0f} s of training per seed).", "", warmups.markdown(), "",
           estimates.markdown(), "",
           *(_matrix_text(f"{signal}, {e.steps} steps", matrix, tasks) for e in a.estimates
             for signal, matrix in (("gradient cosine", e.cosine), ("lookahead (TAG)", e.lookahead))),
           "", "### Recommended grouping", "",
           groupings.markdown(), "", "### Layouts: which tasks share a module", "",
           f"![layouts]({figures['layouts']})", "", layouts.markdown(), ""]
    if a.trained_groups:
        versus = Table("grouped_versus", "", ["grouped - ", "seeds", "macro delta", "95% interval",
                                              "p (seeds x examples)", "p (t over seeds)"],
                       [[other, c.seeds, _cell(c.delta), f"[{c.low:+.3f}, {c.high:+.3f}]", c.p_value, c.p_t]
                        for other, c in a.trained_groups["versus"].items()])
        out += ["### The recommended groups, trained", "",
                "Groups: " + "; ".join("+".join(g) for g in a.trained_groups["groups"]) + ".", "", versus.markdown(),
                ""]
    if a.costs:
        out += ["### What sharing costs and saves: SFT x N against MFT", "", "Same method, same training examples; "
                "mean over the seeds with both. Where the training work matches, the saving is in what is stored, "
                "what trains and what answering costs.", "", costs.markdown(), ""]
    return out


def _quality_table(quality: dict[str, Any]) -> Table:
    rows = []
    for task, q in quality["tasks"].items():
        test = q.get("test", {})
        rows.append([task, q["kind"], q.get("train", {}).get("positive_share"), q.get("train", {}).get(
            "duplicate_share"), test.get("exact_in_train_share"), test.get("near_in_train_share"),
            q.get("label_conflict_share")])
    return Table("data_quality", "", ["task", "kind", "train positive share", "train duplicate share",
                                      "test exact in train", "test near-dup in train", "label conflicts"], rows)


def _matrix_text(name: str, matrix: np.ndarray, tasks: list[str]) -> str:
    rows = "; ".join(f"{a}: " + ", ".join(f"{tasks[j]} {matrix[i, j]:+.3g}" for j in range(len(tasks)) if j != i)
                     for i, a in enumerate(tasks))
    return f"- {name}: {rows}"


def _shared(shared: dict[str, dict[str, float]]) -> str:
    found = [f"{a} in {b} {v:.1%}" for a, row in shared.items() for b, v in row.items() if v > 0]
    return ", ".join(found) or "none"


def _cell(value: float, spread: float = math.nan) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:+.3f}" + (f" ± {spread:.3f}" if math.isfinite(spread) else "")


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else math.nan


def _star(test: SeedComparison | None) -> str:
    return "*" if test is not None and test.significant else ""


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _percent(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{100 * value:.1f}%"
