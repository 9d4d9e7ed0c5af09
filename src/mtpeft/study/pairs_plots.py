"""The figures of a pairs study: who helps whom (with the cells that stand out from the noise), how stable each task
is, how asymmetric and complementary each pair is, the data's quality, and what each layout costs for its score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mtpeft.study.layouts import Layout
from mtpeft.study.plots import front, save
from mtpeft.study.stats import SeedComparison
from mtpeft.study.transfer import Transfer


def heatmap(t: Transfer, tests: list[list[SeedComparison | None]], path: Path, title: str) -> None:
    """Transfer matrix: row task's score change when trained with the column task (± std over seeds); a cell whose
    two-level bootstrap over seeds and test examples excludes zero is starred and framed."""
    tasks, matrix, spread = t.tasks, t.matrix, t.spread
    fig = Figure(figsize=(1.4 * len(tasks) + 2.5, 1.1 * len(tasks) + 1.5))
    ax = fig.add_subplot()
    limit = float(np.nanmax(np.abs(matrix))) if np.isfinite(matrix).any() else 1.0
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu", vmin=-limit, vmax=limit)
    for i in range(len(tasks)):
        for j in range(len(tasks)):
            if not np.isfinite(matrix[i, j]):
                continue
            test = tests[i][j]
            starred = test is not None and test.significant
            extra = f"\n±{spread[i, j]:.3f}" if np.isfinite(spread[i, j]) else ""
            ax.text(j, i, f"{matrix[i, j]:+.3f}{'*' if starred else ''}{extra}", ha="center", va="center",
                    fontsize=8, fontweight="bold" if starred else "normal")
            if starred:
                ax.add_patch(_frame(j, i))
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel("partner task (trained with)")
    ax.set_ylabel("task scored")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label="score with partner - score alone")
    fig.tight_layout()
    save(fig, path)


def stability(t: Transfer, path: Path) -> None:
    """Per task: how much its score moves between seeds alone, and how much its transfer moves between partners."""
    rows = t.stability()
    series = [(label, [rows[task][key] for task in t.tasks]) for key, label in [
        ("alone_std_over_seeds", "alone: std over seeds"),
        ("transfer_std_over_partners", "transfer: std over partners"), ("worst_transfer", "worst transfer")]]
    _bars(t.tasks, series, "test score points",
          "Task stability (small bars: stable; the paper: clone is the stable task)", path)


def asymmetry(t: Transfer, path: Path) -> None:
    """Per pair: what b does to a, and what a does to b (bars of unequal sign or size are asymmetric)."""
    pairs = t.pairs()
    _bars([f"{p['a']}\n+ {p['b']}" for p in pairs],
          [("T[a, b]: a's change with b", [p["a_with_b"] for p in pairs]),
           ("T[b, a]: b's change with a", [p["b_with_a"] for p in pairs])],
          "score with partner - alone", "Asymmetry per pair", path)


def complementarity(t: Transfer, path: Path) -> None:
    """Each pair as a point (T[a, b], T[b, a]): top right both gain, bottom left both lose, elsewhere one gains."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    pairs = t.pairs()
    values = [v for p in pairs for v in (p["a_with_b"], p["b_with_a"]) if np.isfinite(v)]
    limit = 1.15 * max([abs(v) for v in values] + [1e-3])
    ax.axhspan(0, limit, xmin=0.5, xmax=1, color="C2", alpha=0.08)
    ax.axhspan(-limit, 0, xmin=0, xmax=0.5, color="C3", alpha=0.08)
    for p in pairs:
        ax.scatter(p["a_with_b"], p["b_with_a"], color="C0", zorder=3)
        ax.annotate(f"{p['a']} / {p['b']}", (p["a_with_b"], p["b_with_a"]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.axhline(0, color="grey", linewidth=1)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_xlabel("T[a, b]: a's change with b")
    ax.set_ylabel("T[b, a]: b's change with a")
    ax.set_title("Complementarity (green: both gain, red: both lose)", fontsize=9)
    save(fig, path)


def data_quality(quality: dict[str, Any], path: Path) -> None:
    """The paper's fifth factor, per task: rare positives, duplicates, test inputs seen in training, conflicts."""
    signals = [("train positive share", lambda q: q.get("train", {}).get("positive_share")),
               ("train duplicate share", lambda q: q.get("train", {}).get("duplicate_share")),
               ("test exact in train", lambda q: q.get("test", {}).get("exact_in_train_share")),
               ("test near-duplicate in train", lambda q: q.get("test", {}).get("near_in_train_share")),
               ("label conflicts", lambda q: q.get("label_conflict_share"))]
    tasks = sorted(quality["tasks"])
    series = [(label, [np.nan if (v := read(quality["tasks"][task])) is None else v for task in tasks])
              for label, read in signals]
    _bars(tasks, series, "share", "Dataset quality signals (noisy or imbalanced data may drag its partners)", path)


def layouts(scored: list[Layout], path: Path) -> None:
    """Trainable % of the backbone (log) against the macro test score for every layout; the dashed line joins the
    layouts no other beats on both."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for layout in scored:
        ax.scatter(layout.trainable_percent, layout.scores["macro"], s=30 + 15 * layout.modules, zorder=3,
                   color="C1" if layout.label == "grouped" else "C0")
        ax.annotate(f"{layout.label} ({layout.modules} module{'s' * (layout.modules > 1)})",
                    (layout.trainable_percent, layout.scores["macro"]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    kept = front([(layout.trainable_percent, layout.scores["macro"]) for layout in scored])
    if kept:
        ax.plot(*zip(*kept, strict=True), color="grey", linestyle="--", linewidth=1, zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters to serve every task (% of the backbone, log scale)")
    ax.set_ylabel("macro test score (mean over seeds)")
    ax.set_title("What each layout of shared modules costs for its score", fontsize=9)
    ax.grid(alpha=0.3)
    save(fig, path)


def _bars(labels: list[str], series: list[tuple[str, list[float]]], ylabel: str, title: str, path: Path) -> None:
    """Grouped bars: one group per label, one bar per series."""
    fig = Figure(figsize=(max(7.0, 1.3 * len(labels) + 2), 3.8))
    ax = fig.add_subplot()
    x, width = np.arange(len(labels)), 0.8 / len(series)
    for k, (name, values) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width=width, label=name, color=f"C{k}")
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)


def _frame(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2)
