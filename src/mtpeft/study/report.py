"""`mtpeft report`: rebuild a study's results.csv, tables, plots and report.md from its run directories."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtpeft.errors import RunError
from mtpeft.io import write_text
from mtpeft.study import plots
from mtpeft.study.analysis import (
    LEXICAL,
    DeltaRow,
    ScoreRow,
    deltas,
    grid,
    lexical_rows,
    mft_vs_sft,
    peft_vs_full,
    score_rows,
    tasks_of,
    versus_lexical,
)
from mtpeft.study.collect import RunRecord, collect
from mtpeft.study.curves import CurvePoint, curve_sizes, learning_curve
from mtpeft.study.efficiency import Footprint, Savings, footprints, savings
from mtpeft.study.tables import Table

SPLITS = ("validation", "test")
LEDGER_COLUMNS = ("trainable_params", "trainable_percent", "stored_bytes", "examples", "real_tokens",
                  "padded_tokens", "train_flops", "train_time_s", "wall_time_s", "peak_rss_bytes")
MAIN_SETTINGS = ("sft", "mft", "prompt")
SETTING_TITLES = {"mft": "Multi-task fine-tuning (MFT): one run over all tasks",
                  "sft": "Single-task fine-tuning (SFT): one run per task",
                  "prompt": "Prompting (no training): `mtpeft prompt` runs, zero- or few-shot"}


@dataclass(frozen=True)
class StudyReport:
    path: Path  # report.md
    tables: list[Table]  # every table of the report (also under tables/ as CSV and LaTeX)


def write_report(study_dir: Path) -> Path:
    """Everything under ``study_dir`` that is derived from ``runs/``; returns the path of report.md."""
    return build_report(study_dir).path


def build_report(study_dir: Path) -> StudyReport:
    """Write results.csv, tables, plots and report.md from ``study_dir/runs``; return report.md and the tables."""
    records, unfinished = collect(study_dir)
    if not records:
        waiting = f" ({len(unfinished)} unfinished)" if unfinished else ""
        raise RunError(f"{study_dir}: no finished runs yet{waiting}")
    tasks = tasks_of(records)
    main = [r for r in records if r.setting in MAIN_SETTINGS]  # pairs and groups: `mtpeft pairs` reports them
    sizes = curve_sizes(study_dir)
    curve = learning_curve(main, tasks) if len(sizes) > 1 else []
    if curve:  # the other tables compare systems at one size: the largest
        main = [r for r in main if r.train_examples in (None, sizes[-1]) or r.is_prompt]
    cells = grid(main)
    rows = score_rows(cells, tasks) + lexical_rows(cells, tasks)
    vs_full = deltas(cells, tasks, peft_vs_full(cells))
    vs_sft = deltas(cells, tasks, mft_vs_sft(cells))
    vs_lexical = versus_lexical(cells, tasks)
    prints = footprints(main)
    saved = savings(prints)

    write_text(study_dir / "results.csv", results_csv(records))
    tables = [*(score_table(rows, tasks, s) for s in SETTING_TITLES if any(r.setting == s for r in rows)),
              delta_table("delta_peft_vs_full", "PEFT - Full (same setting, model, seed)", vs_full),
              delta_table("delta_mft_vs_sft", "MFT - SFT (same model, method, seed)", vs_sft),
              delta_table("delta_vs_lexical", "Model - lexical baseline (fitted on the same training examples)",
                          vs_lexical),
              ledger_table(prints), savings_table(saved), *([curve_table(curve, tasks)] if curve else [])]
    for table in tables:
        table.write(study_dir / "tables")
    figures = study_dir / "plots"
    plots.pareto(rows, figures / "pareto.png")
    if vs_full:
        plots.forest(vs_full, figures / "forest_peft_vs_full.png", "PEFT - Full per task (95% paired bootstrap)")
    if vs_lexical:
        plots.forest(vs_lexical, figures / "forest_vs_lexical.png",
                     "Model - lexical baseline per task (95% paired bootstrap)")
    plots.training_curves(main, tasks, figures / "training_curves.png")
    if curve:
        plots.learning_curves(curve, tasks, figures / "learning_curve.png")
    report = render(study_dir, records, unfinished, tables, saved, bool(vs_full), bool(vs_lexical),
                    sizes[-1] if curve else None)
    write_text(study_dir / "report.md", report)
    return StudyReport(study_dir / "report.md", tables)


def results_csv(records: list[RunRecord]) -> str:
    """One row per run x task x split: the axes, every metric, the baselines and the run's ledger."""
    metric_names = sorted({m for r in records for t in r.tasks for s in r.metrics.tasks[t].splits() if s in SPLITS
                           for m in r.metrics.tasks[t].scores(s)})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "setting", "model", "method", "seed", "task", "split", "metric", "score",
                     "baseline", "lexical", *metric_names, *LEDGER_COLUMNS])
    for r in records:
        ledger = _run_ledger(r)
        for task in r.tasks:
            info = r.metrics.tasks[task]
            for split in (s for s in SPLITS if s in info.splits()):
                values = info.scores(split)
                writer.writerow([r.run_id, r.setting, r.model, r.method, r.seed, task, split, info.metric,
                                 values[info.metric], info.trivial(split),
                                 r.lexical_score(task, split), *(values.get(m, "") for m in metric_names),
                                 *(ledger[c] for c in LEDGER_COLUMNS)])
    return out.getvalue()


def _run_ledger(r: RunRecord) -> dict[str, Any]:
    params, train = r.ledger.parameters, r.ledger.train_info
    return {"trainable_params": params.trainable, "trainable_percent": params.trainable_percent,
            "stored_bytes": r.ledger.storage.bytes_total, "train_flops": train.flops.total,
            **{k: getattr(train, k) for k in ("examples", "real_tokens", "padded_tokens", "train_time_s",
                                              "wall_time_s", "peak_rss_bytes")}}


def score_table(rows: list[ScoreRow], tasks: list[str], setting: str) -> Table:
    body = []
    for row in (r for r in rows if r.setting == setting):
        cells = [_mean_std(row.scores.get(t)) for t in tasks]
        percent = "–" if row.method == LEXICAL else f"{row.trainable_percent:.2f}"
        body.append([row.model, row.method, row.seeds, percent, *cells, _mean_std(row.macro)])
    metrics = [f"{t}" for t in tasks]
    return Table(f"{setting}_results", SETTING_TITLES[setting],
                 ["model", "method", "seeds", "trainable %", *metrics, "macro"], body)


def curve_table(points: list[CurvePoint], tasks: list[str]) -> Table:
    body = [[p.train_examples, p.row.setting.upper(), p.row.model, p.row.method, p.row.seeds,
             *(_mean_std(p.row.scores.get(t)) for t in tasks), _mean_std(p.row.macro), f"{p.time_s:.0f}"]
            for p in sorted(points, key=lambda p: (p.row.setting, p.row.model, p.row.method, p.train_examples))]
    return Table("learning_curve", "Learning curve: test score against training examples per task",
                 ["train examples", "setting", "model", "method", "seeds", *tasks, "macro", "time s"], body)


def delta_table(name: str, title: str, rows: list[DeltaRow]) -> Table:
    body = [[f"{r.a[0].upper()} {r.a[1]}", f"{r.a[2]} - {r.b[2]}" if r.a[2] != r.b[2] else r.a[2], r.task,
             r.metric, _mean_std(r.seeds, signed=True), _interval(r.seeds["low"], r.seeds["high"]),
             _interval(r.paired.low, r.paired.high), _p(r.paired.p_value), _p(r.paired.p_mcnemar), r.paired.n]
            for r in rows]
    return Table(name, title, ["setting/model", "comparison", "task", "metric", "Δ mean ± std over seeds",
                               "95% CI (seeds)", "95% CI (bootstrap)", "p (bootstrap)", "p (McNemar)", "n pairs"],
                 body)


def ledger_table(prints: dict[Any, Footprint]) -> Table:
    groups: dict[tuple[str, str, str], list[Footprint]] = defaultdict(list)
    for fp in prints.values():
        groups[(fp.setting, fp.model, fp.method)].append(fp)
    body = []
    for (setting, model, method), fps in sorted(groups.items()):
        mean = {f: float(np.mean([getattr(fp, f) for fp in fps])) for f in (
            "runs", "trainable_params", "trainable_percent", "stored_bytes", "examples", "real_tokens", "flops",
            "train_time_s", "wall_time_s")}
        body.append([setting.upper(), model, method, int(mean["runs"]), f"{mean['trainable_params']:,.0f}",
                     f"{mean['trainable_percent']:.2f}", f"{mean['stored_bytes'] / 1e6:.2f}",
                     f"{mean['examples']:,.0f}", f"{mean['real_tokens']:,.0f}", f"{mean['flops'] / 1e12:.1f}",
                     f"{mean['train_time_s']:.0f}", f"{mean['wall_time_s']:.0f}",
                     f"{max(fp.peak_rss_bytes for fp in fps) / 2**30:.2f}"])
    return Table("ledger", "Efficiency ledger: what serving every task costs (mean over seeds)",
                 ["setting", "model", "method", "runs", "trainable params", "trainable %", "stored MB",
                  "examples", "real tokens", "train TFLOPs", "train s", "wall s", "peak RSS GiB"], body)


def savings_table(saved: list[Savings]) -> Table:
    groups: dict[tuple[str, str], list[Savings]] = defaultdict(list)
    for s in saved:
        groups[(s.model, s.method)].append(s)
    body = []
    for (model, method), items in sorted(groups.items()):
        def mean(field: str, items: list[Savings] = items) -> float:
            values = [getattr(s, field) for s in items if getattr(s, field) is not None]
            return float(np.mean(values)) if values else float("nan")
        body.append([model, method, f"{mean('storage_factor'):.2f}x", f"{mean('trainable_factor'):.2f}x",
                     _percent(mean("flops_saving_percent")), _percent(mean("time_saving_percent")),
                     _percent(mean("flops_saving_vs_sft_full_percent")),
                     _percent(mean("time_saving_vs_sft_full_percent"))])
    return Table("savings", "MFT against SFT (mean over seeds; > 1x and > 0% favour MFT)",
                 ["model", "method", "storage SFT/MFT", "trainable SFT/MFT", "FLOPs saved vs SFT same method",
                  "train time saved vs SFT same method", "FLOPs saved vs SFT-Full", "train time saved vs SFT-Full"],
                 body)


def render(study_dir: Path, records: list[RunRecord], unfinished: list[str], tables: list[Table],
           saved: list[Savings], has_forest: bool, has_lexical_forest: bool, curve_size: int | None = None) -> str:
    by_name = {t.name: t for t in tables}
    parts = [f"# Study report: {study_dir.name}", "",
             f"{len(records)} finished runs under `runs/`" + (
                 f"; {len(unfinished)} unfinished (not counted): {', '.join(unfinished)}" if unfinished else "")
             + ". Scores are test-split main metrics (accuracy, F1 of the positive class, or MRR over the whole "
               "pool), the mean over seeds ± the sample standard deviation. Every number below is recomputed "
               "from the run directories by `mtpeft report`. The *lexical* rows are the baseline every run fits "
               "on its own training examples (TF-IDF + logistic regression, BM25 for search, copying the input "
               "for generation): a model is worth its cost where it beats them.", ""]
    if curve_size is not None:
        parts += [f"## {by_name['learning_curve'].title}", "", "Each training size caps every task's training split "
                  "(smaller sets are subsets of larger ones; validation and test stay the same). *time s*: wall time "
                  "of the runs (SFT: all of them), or the lexical baseline's fit-and-score time, mean over seeds.", "",
                  by_name["learning_curve"].markdown(), "", "![Learning curve](plots/learning_curve.png)", "",
                  f"The sections below compare systems at the largest size, {curve_size:,} training examples per "
                  "task.", ""]
    for name in (f"{setting}_results" for setting in SETTING_TITLES):
        if name in by_name:
            parts += [f"## {by_name[name].title}", "", by_name[name].markdown(), ""]
    parts += ["## Paired comparisons", "",
              "Per-seed deltas use each run's own test score; the interval and the tests pool the paired test "
              "examples of every shared seed. *p (bootstrap)*: paired bootstrap of the task's own metric (2,000 "
              "resamples of test examples or queries). *p (McNemar)*: McNemar's exact test on per-example "
              "correctness, for classification; it tests accuracy disagreements, so on a rare-positive F1 task it "
              "can be small while F1 does not move. Seeds also change the data split, so the seed spread includes "
              "data variance.", ""]
    for name in ("delta_peft_vs_full", "delta_mft_vs_sft", "delta_vs_lexical"):
        table = by_name[name]
        parts += [f"### {table.title}", "", table.markdown() if table.rows else "_no pairs in this study_", ""]
    parts += ["## Efficiency ledger", "", by_name["ledger"].markdown(), "",
              "What is counted: *stored MB* is the bytes on disk needed to serve every task besides the base model "
              "(SFT-PEFT: N modules + heads, MFT-PEFT: one module + heads, Full: the model copies). *Train TFLOPs* "
              "are counted analytically from the model's shapes over padded tokens: forward, activation gradients "
              "and weight gradients of every linear layer and attention (frozen weights skip their weight "
              "gradients; see `mtpeft.ledger.flops`). Times are measured; peak RSS is the largest run's.", "",
              "### " + by_name["savings"].title, "",
              by_name["savings"].markdown() if saved else "_needs both SFT and MFT runs_", "",
              "## Plots", "", "![Pareto front](plots/pareto.png)", ""]
    if has_forest:
        parts += ["![PEFT - Full](plots/forest_peft_vs_full.png)", ""]
    if has_lexical_forest:
        parts += ["![Model - lexical](plots/forest_vs_lexical.png)", ""]
    parts += ["![Training curves](plots/training_curves.png)", "", "## Provenance", "", *_provenance(records), "",
              "Tables as CSV and LaTeX: `tables/`; one row per run x task x split: `results.csv`.", ""]
    return "\n".join(parts)


def _provenance(records: list[RunRecord]) -> list[str]:
    versions: dict[str, set[str]] = defaultdict(set)
    commits, data = set(), defaultdict(set)
    for r in records:
        meta = r.ledger.meta_info
        for package, version in meta.packages.items():
            versions[package].add(version)
        commits.add(meta.git_commit or "unknown")
        for task, splits in meta.data.items():
            test = splits.get("test", {})
            data[(task, r.seed)].add(test.get("sha256_16"))
    lines = ["- packages: " + ", ".join(f"{p} {'/'.join(sorted(v))}" for p, v in sorted(versions.items())),
             "- git commit(s): " + ", ".join(sorted(commits))]
    clashes = [f"{task} (seed {seed})" for (task, seed), hashes in sorted(data.items()) if len(hashes) > 1]
    lines.append("- test data: every run with the same seed saw the same test examples" if not clashes else
                 "- WARNING: runs with the same seed saw different test data for " + ", ".join(clashes))
    return lines


def _mean_std(summary: dict[str, float] | None, signed: bool = False) -> str:
    if not summary or math.isnan(summary["mean"]):
        return "–"
    sign = "+" if signed else ""
    text = f"{summary['mean']:{sign}.3f}"
    return text if math.isnan(summary.get("std", float("nan"))) else f"{text} ± {summary['std']:.3f}"


def _interval(low: float, high: float) -> str:
    return "–" if math.isnan(low) else f"[{low:+.3f}, {high:+.3f}]"


def _p(value: float) -> str:
    return "–" if math.isnan(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}%"
