"""What the commands print: run summaries, metrics, the model zoo, sources, statistics and study plans.

Every table can come out as JSON instead (``--json``: the same numbers, for scripts). Off a terminal, tables are
printed at their natural width, so piped output keeps every cell whole.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from mtpeft.run.files import RunFiles
from mtpeft.run.schema import Ledger, Metrics, read_ledger, read_metrics

if TYPE_CHECKING:
    from mtpeft.study.run_comparison import RunComparison

console = Console()
SPLIT_ORDER = ("validation", "test", "all")


def show(table: Table) -> None:
    """Print ``table``; off a terminal at its natural width instead of the 80 columns rich assumes there."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(10**6), table).maximum
    Console(width=max(console.width, natural)).print(table)


def print_json(data: Any) -> None:
    """``data`` as strict JSON on stdout (a NaN or an infinity, which JSON has no word for, becomes null)."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return data


def _fmt(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_metrics(metrics: Metrics, title: str = "test scores", as_json: bool = False) -> None:
    """Per task: the main metric per split, the trivial and lexical baselines, and the model's margin over each
    on the last split (red where the model does not beat a baseline)."""
    if as_json:
        print_json(metrics.as_json())
        return
    splits = [s for s in SPLIT_ORDER if any(s in task.splits() for task in metrics.tasks.values())]
    last = splits[-1]
    table = Table(title=title)
    for col in ("task", "metric", *splits, "trivial", "lexical", "vs trivial", "vs lexical"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    scored: dict[str, tuple[float, float]] = {}  # task -> (model, lexical) on the last split
    for name, task in metrics.tasks.items():
        value, lexical = task.main(last), task.lexical_main(last)
        table.add_row(name, task.metric, *(_fmt(task.main(s)) for s in splits), _fmt(task.trivial(last)),
                      _fmt(lexical), _margin(value, task.trivial(last)), _margin(value, lexical))
        if lexical is not None:
            scored[name] = (value, lexical)
    show(table)
    console.print("mean main metric: " + ", ".join(f"{s} {_fmt(v)}" for s, v in metrics.mean.items()))
    if scored:
        print_against_lexical(scored, last)


def print_against_lexical(scored: dict[str, tuple[float, float]], split: str) -> None:
    """Where the model stands against a bag of words, in one line: how many tasks it beats and the two means."""
    behind = [name for name, (value, lexical) in scored.items() if value <= lexical]
    model, lexical = (sum(pair[k] for pair in scored.values()) / len(scored) for k in (0, 1))
    colour = "green" if not behind else "red" if len(behind) * 2 >= len(scored) else "yellow"
    console.print(f"[{colour}]against the lexical baseline on {split}: above it on {len(scored) - len(behind)} of "
                  f"{len(scored)} tasks" + (f" (not on {', '.join(behind)})" if behind else "")
                  + f"; mean {_fmt(model)} against {_fmt(lexical)}[/]")


def _margin(value: float, baseline: float | None) -> str:
    if baseline is None:
        return "-"
    delta = value - baseline
    return f"[{'green' if delta > 0 else 'red'}]{delta:+.4f}[/]"


def _records(run_dir: Path) -> tuple[Metrics, Ledger]:
    files = RunFiles(run_dir)
    return read_metrics(files.metrics), read_ledger(files.ledger)


def print_run_summary(run_dir: Path) -> None:
    metrics, ledger = _records(run_dir)
    print_metrics(metrics, title=f"{run_dir} (selected: epoch {metrics.selected.epoch if metrics.selected else '-'})")
    p, t, s = ledger.parameters, ledger.train_info, ledger.storage
    console.print(
        f"trainable {p.trainable:,} of {p.total:,} parameters ({p.trainable_percent:.3f}%: "
        f"method {p.method_trainable:,}, heads {p.heads:,}); stored {s.bytes_total / 1e6:.2f} MB; "
        f"{t.examples:,} examples, {t.real_tokens:,} tokens ({t.padding_share:.1%} padding); "
        f"{t.flops.total / 1e12:.1f} training TFLOPs ({t.flops.achieved_gflop_per_s or 0:.0f} GFLOP/s); "
        f"wall {t.wall_time_s:.0f}s, peak RSS {t.peak_rss_bytes / 2**30:.2f} GiB"
    )
    console.print(f"run directory: {run_dir}")
    print_next_commands(run_dir, next(iter(metrics.tasks)))


def print_next_commands(run_dir: Path, task: str) -> None:
    """What to try on a finished run, with its own path and one of its tasks filled in (lines to copy)."""
    console.print("next:")
    for command, what in [(f"mtpeft eval {run_dir}", "score it again from its files (--path: data it never saw)"),
                          (f"mtpeft predict {run_dir} --task {task} --input items.jsonl", "answer a jsonl file"),
                          (f"mtpeft serve {run_dir}", "every task over HTTP, one backbone pass per batch")]:
        console.print(f"  {command}  [dim]# {what}[/]", soft_wrap=True, highlight=False)


def print_prompt_summary(run_dir: Path) -> None:
    metrics, ledger = _records(run_dir)
    info, t = ledger.run_info, ledger.train_info
    print_metrics(metrics, title=f"{run_dir} ({info.method}, {info.model})")
    split = info.split or "test"
    unparseable = {name: task.scores(split)["unparseable_rate"] for name, task in metrics.tasks.items()
                   if "unparseable_rate" in task.scores(split)}
    if unparseable:
        console.print("unparseable answers (first word not yes/no): "
                      + ", ".join(f"{task} {rate:.1%}" for task, rate in unparseable.items()))
    console.print(
        f"{t.examples:,} examples, {t.prompts or 0:,} prompts, {t.real_tokens:,} prompt tokens "
        f"({t.padding_share:.1%} padding), {t.generated_tokens or 0:,} generated; "
        f"{(t.flops.inference_forward or 0) / 1e12:.1f} inference TFLOPs; wall {t.wall_time_s:.0f}s "
        f"(inference {t.inference_time_s or 0:.0f}s), peak RSS {t.peak_rss_bytes / 2**30:.2f} GiB"
    )
    console.print(f"run directory: {run_dir}")


def print_models(as_json: bool = False) -> None:
    from mtpeft.models.zoo import ZOO

    rows = [{"name": name, "architecture": entry.architecture, "parameters": entry.parameters,
             "licence": entry.licence, "installed": entry.is_installed(), "install": entry.install_command,
             "note": entry.note} for name, entry in ZOO.items()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="model zoo (offline)")
    for col in ("name", "architecture", "parameters", "licence", "installed", "install / note"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], row["architecture"], row["parameters"], row["licence"],
                      "[green]yes[/]" if row["installed"] else "[red]no[/]",
                      row["note"] if row["installed"] else row["install"])
    show(table)
    console.print("Any local model folder or Hugging Face id also works (a hub id needs a hub or a local HF cache).")


def print_methods(as_json: bool = False) -> None:
    from mtpeft.methods import method_table
    from mtpeft.models.families import FAMILIES

    rows = method_table()
    if as_json:
        print_json(rows)
        return
    table = Table(title="fine-tuning methods")
    for col in ("method", "stores", "generation", "mergeable", *(f"default targets: {f}" for f in FAMILIES)):
        table.add_column(col)
    for row in rows:
        targets = row["default_targets"]
        table.add_row(row["method"], row["stores"] + "/", _yes(row["generation"]), _yes(row["mergeable"]),
                      *(_targets(targets.get(f)) for f in FAMILIES))
    show(table)
    console.print("families: " + "; ".join(f"{f.name} ({', '.join(f.model_types)}: {f.examples})"
                                           for f in FAMILIES.values())
                  + ". Other model types need the targets in method_args.", highlight=False)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _targets(targets: Any) -> str:
    if targets is None:
        return "-"
    return " / ".join(_targets(t) for t in targets) if isinstance(targets, list) and isinstance(
        targets[0], list) else ", ".join(targets) if isinstance(targets, list) else str(targets)


def print_sources(as_json: bool = False) -> None:
    from mtpeft.tasks import SOURCES, TASKS

    tasks = [{"task": name, "kind": str(spec.kind), "metric": spec.metric, "default_source": spec.default_source,
              "question": spec.description} for name, spec in TASKS.items()]
    sources = [{"source": name, "role": src.role, "kinds": [str(k) for k in src.kinds], "reads": src.description}
               for name, src in SOURCES.items()]
    if as_json:
        print_json({"tasks": tasks, "sources": sources})
        return
    table = Table(title="built-in tasks")
    for col in ("task", "kind", "metric", "default source", "question"):
        table.add_column(col)
    for row in tasks:
        table.add_row(row["task"], row["kind"], row["metric"], row["default_source"] or "-", row["question"])
    show(table)
    table = Table(title="sources (readers and builders)")
    for col in ("source", "role", "kinds", "reads"):
        table.add_column(col)
    for row in sources:
        table.add_row(row["source"], row["role"], ", ".join(row["kinds"]), row["reads"])
    show(table)


def print_stats(stats: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        print_json(stats)
        return
    table = Table(title="task statistics")
    for col in ("task", "source", "split", "examples", "positive", "tokens p50", "p90", "p99", "truncated"):
        table.add_column(col, justify="left" if col in ("task", "source", "split") else "right")
    for task, entry in stats.items():
        for split, row in entry["splits"].items():
            tok = row.get("tokens", {})
            positive = f"{row['positive']} ({row['positive_rate']:.1%})" if "positive" in row else "-"
            table.add_row(task, entry["source"], split, str(row["examples"]), positive, _fmt(tok.get("p50"), 0),
                          _fmt(tok.get("p90"), 0), _fmt(tok.get("p99"), 0),
                          f"{tok['truncated_share']:.1%}" if "truncated_share" in tok else "-")
    show(table)


def print_report_tables(tables: list[Any]) -> None:
    """A study report's tables (:class:`mtpeft.study.tables.Table`) as JSON: title, columns and rows of each."""
    print_json({t.name: {"title": t.title, "columns": t.columns, "rows": t.rows} for t in tables})


def print_preview(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        console.rule(f"{row['id']}  label={row.get('label')}")
        console.print(row["text"], markup=False, highlight=False)
        if row.get("text_pair") is not None:
            console.rule("second input", style="dim")
            console.print(row["text_pair"], markup=False, highlight=False)


def print_study_plan(runs: list[Any]) -> None:
    """The runs of a study (shard) and whether each is already finished (recorded: committed evidence without
    weights counts, as the study itself skips it)."""
    table = Table(title=f"{len(runs)} runs")
    table.add_column("run (setting-model-method-seed[-task])", no_wrap=True)
    table.add_column("tasks")
    table.add_column("status")
    for run in runs:
        done = RunFiles(run.config.run_dir()).is_recorded()
        table.add_row(run.run_id, ", ".join(t.name for t in run.config.tasks), "finished" if done else "to run")
    show(table)


def print_comparison(comparison: RunComparison, as_json: bool = False) -> None:
    """``mtpeft compare``: per task A, B, A - B with its 95% bootstrap interval and the paired tests' p-values."""
    if as_json:
        print_json(comparison.as_json())
        return
    several = len(comparison.b) > 1
    b_name = "lexical" if not comparison.b else "B"
    a_title, b_title = _comparison_titles(comparison)
    console.print(f"A = {a_title}\nB = {b_title}\n{comparison.split} split, paired over the same examples",
                  markup=False, highlight=False)
    table = Table()
    for col in ("task", "metric", "n", "A", b_name, f"A - {b_name}", "95% interval", "p (bootstrap)",
                "p (McNemar)", *(["B run"] if several else [])):
        table.add_column(col, justify="left" if col in ("task", "metric", "B run") else "right")
    for row in comparison.tasks:
        p = row.paired
        table.add_row(row.task, row.metric, f"{p.n:,}", _fmt(row.a), _fmt(row.b), _margin(row.a, row.b),
                      f"[{p.low:+.4f}, {p.high:+.4f}]", _p_value(p.p_value), _p_value(p.p_mcnemar),
                      *([row.b_source] if several else []))
    show(table)
    macro_a, macro_b = comparison.macro
    count = len(comparison.tasks)
    console.print(f"macro over {count} task{'s' if count > 1 else ''}: A {macro_a:.4f}, {b_name} {macro_b:.4f} "
                  f"({macro_a - macro_b:+.4f})")
    unshared = [r.task for r in comparison.tasks if r.paired.n < max(r.examples_a, r.examples_b)]
    if unshared:
        console.print(f"[yellow]compared on the examples both sides have only: {', '.join(unshared)}[/]")
    for task, why in comparison.skipped.items():
        console.print(f"not compared: {task} ({why})")


def _comparison_titles(comparison: RunComparison) -> tuple[str, str]:
    """What A and B are: pooled folds, a run against its lexical baseline, against one run or against several."""
    if comparison.folds:
        return (f"{len(comparison.folds)} folds pooled: {', '.join(map(str, comparison.folds))}",
                "their lexical baselines, pooled")
    if not comparison.b:
        return str(comparison.a), "A's lexical baseline"
    if len(comparison.b) > 1:
        return str(comparison.a), f"{len(comparison.b)} runs (last column)"
    return str(comparison.a), str(comparison.b[0])


def _p_value(p: float) -> str:
    return "-" if math.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"
