"""The study's figures (matplotlib's object API: no global state, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mtpeft.io import atomic_open
from mtpeft.study.analysis import DeltaRow, ScoreRow
from mtpeft.study.collect import RunRecord
from mtpeft.study.curves import CurvePoint, is_lexical

MARKERS = {"sft": "o", "mft": "s"}


def pareto(rows: list[ScoreRow], path: Path) -> None:
    """Trainable % (log) against macro test score; the line joins the runs no other run beats on both.

    Rows that train nothing (prompting) have no place on a log axis: they are dotted horizontal lines.
    """
    scored = [r for r in rows if not math.isnan(r.macro["mean"])]
    points = [(r.trainable_percent, r.macro["mean"], r) for r in scored if r.trainable_percent > 0]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    methods = sorted({r.method for r in rows})
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for row in (r for r in scored if r.trainable_percent == 0):
        ax.axhline(row.macro["mean"], color=colors[row.method], linestyle=":", linewidth=1,
                   label=f"{row.model}/{row.method} (nothing trained)")
    if ax.lines:
        ax.legend(fontsize=7)
    for x, y, row in points:
        ax.scatter(x, y, marker=MARKERS.get(row.setting, "^"), color=colors[row.method], s=50, zorder=3)
        ax.annotate(f"{row.setting.upper()} {row.model}/{row.method}", (x, y), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    kept = front([(x, y) for x, y, _ in points])
    if kept:
        ax.plot(*zip(*kept, strict=True), color="grey", linestyle="--", linewidth=1, zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the run's parameters, log scale)")
    ax.set_ylabel("macro test score (mean of task metrics)")
    ax.set_title("Cost vs quality (circles: SFT, squares: MFT)")
    ax.grid(alpha=0.3)
    save(fig, path)


def forest(rows: list[DeltaRow], path: Path, title: str) -> None:
    """One line per comparison and task: the delta and its 95% paired-bootstrap interval."""
    rows = [r for r in rows if r.paired.n]
    fig = Figure(figsize=(7, 0.35 * len(rows) + 1.5))
    ax = fig.add_subplot()
    for y, row in enumerate(reversed(rows)):
        low, high = row.paired.low, row.paired.high
        ax.plot([low, high], [y, y], color="C0")
        ax.scatter([row.paired.delta], [y], color="C3" if row.paired.p_value < 0.05 else "C0", zorder=3)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_yticks(range(len(rows)), [f"{r.a[0].upper()} {r.a[1]}/{r.a[2]} · {r.task}" for r in reversed(rows)],
                  fontsize=7)
    ax.set_xlabel("delta of the task's test metric (red: paired bootstrap p < 0.05)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save(fig, path)


def training_curves(records: list[RunRecord], tasks: list[str], path: Path) -> None:
    """Per-task training loss over optimiser steps, one line per run that trains the task."""
    fig, axes = _task_axes(tasks)
    for ax, task in zip(axes, tasks, strict=True):
        for record in records:
            curve: dict[int, float] = {}
            for row in record.train_log():
                if row.get("event") == "train" and task in row.get("losses", {}):
                    curve[row["step"]] = row["losses"][task]
            if curve:
                ax.plot(list(curve), list(curve.values()), linewidth=1,
                        label=f"{record.setting.upper()} {record.method} s{record.seed}")
        _label(ax, task, "optimiser step", "training loss")
    fig.tight_layout()
    save(fig, path)


def learning_curves(points: list[CurvePoint], tasks: list[str], path: Path) -> None:
    """Per task, test score against training examples (log scale): one line per (setting, model, method) with
    its seed std as error bars, the lexical baseline dashed (one line: every setting fits it on the same data)."""
    fig, axes = _task_axes(tasks)
    systems = sorted({(p.row.setting, p.row.model, p.row.method) for p in points if not is_lexical(p)})
    lexical_setting = min((p.row.setting for p in points if is_lexical(p)), default=None)
    for ax, task in zip(axes, tasks, strict=True):
        for k, system in enumerate(systems):
            line = [p for p in points if (p.row.setting, p.row.model, p.row.method) == system and task in p.row.scores]
            _curve(ax, line, task, dict(color=f"C{k}", marker=MARKERS.get(system[0], "^"),
                                        label=f"{system[0].upper()} {system[1]}/{system[2]}"))
        line = [p for p in points if is_lexical(p) and p.row.setting == lexical_setting and task in p.row.scores]
        _curve(ax, line, task, dict(color="black", linestyle="--", marker="x", label="lexical baseline"))
        ax.set_xscale("log")
        _label(ax, task, "training examples per task (log scale)", "test score")
    fig.tight_layout()
    save(fig, path)


def _task_axes(tasks: list[str]) -> tuple[Figure, list[Any]]:
    """A figure with one subplot per task, two per row."""
    rows, cols = math.ceil(len(tasks) / 2), min(len(tasks), 2)
    fig = Figure(figsize=(5 * cols, 3.5 * rows))
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(len(tasks))]


def _label(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.lines:
        ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def _curve(ax: Any, line: list[CurvePoint], task: str, style: dict[str, Any]) -> None:
    if not line:
        return
    std = [p.row.scores[task].get("std", math.nan) for p in line]
    ax.errorbar([p.train_examples for p in line], [p.row.scores[task]["mean"] for p in line],
                yerr=[0.0 if math.isnan(v) else v for v in std], linewidth=1, capsize=2, **style)


def front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats with fewer (or equal) trainable % and a higher (or equal) score."""
    kept, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            kept.append((x, y))
            best = y
    return kept


def save(fig: Figure, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
