"""The efficiency record of a run: what trained, what is stored, what was processed, what it cost.

Modelled on peft's method-comparison JSON (``run_info`` / ``train_info`` / ``meta_info``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from mtpeft.methods import Method
    from mtpeft.tasks import TaskData

_PACKAGES = ("mtpeft", "torch", "transformers", "peft", "accelerate", "safetensors", "scikit-learn", "rank-bm25")
"""What every run depends on; the last two fit its lexical baseline."""


@dataclass
class ParameterCounts:
    total: int  # backbone + method + heads (+ loss weights)
    backbone: int  # the pretrained model's own parameters
    method_trainable: int  # what the shared module trains (every backbone weight for `full`)
    heads: int  # task heads and loss weights, always trainable

    @property
    def trainable(self) -> int:
        return self.method_trainable + self.heads

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trainable": self.trainable,
                "trainable_percent": round(100 * self.trainable / max(self.total, 1), 4),
                "method_trainable_percent": round(100 * self.method_trainable / max(self.backbone, 1), 4)}


def count_parameters(encoder: nn.Module, heads: list[nn.Module], method: Method) -> ParameterCounts:
    """Exact counts; a parameter reachable under several names is counted once.

    ``backbone`` excludes what the method added (names carrying its ``parameter_markers``), so it is the
    same number for every method on one model.
    """
    encoder_params = {id(p): (n, p) for n, p in encoder.named_parameters(remove_duplicate=True)}
    head_params = {id(p): p for m in heads for p in m.parameters()}
    added = sum(p.numel() for n, p in encoder_params.values() if method.adds(n))
    encoder_total = sum(p.numel() for _, p in encoder_params.values())
    return ParameterCounts(
        total=encoder_total + sum(p.numel() for p in head_params.values()),
        backbone=encoder_total - added,
        method_trainable=sum(p.numel() for _, p in encoder_params.values() if p.requires_grad),
        heads=sum(p.numel() for p in head_params.values()),
    )


def dir_bytes(*paths: Path) -> int:
    """Bytes on disk of files and folders (recursively)."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cpu_info() -> dict[str, Any]:
    """The CPU a run or benchmark ran on: speeds differ by kind (AVX-512 with native bf16, or AVX2 in fp32 only)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    return {"model": model or platform.processor(), "logical_cores": os.cpu_count(), "avx2": "avx2" in flags,
            "avx512": "avx512f" in flags, "native_bf16": bool({"avx512_bf16", "amx_bf16"} & flags)}


def package_versions(*extra: str) -> dict[str, str]:
    """Versions of Python and the packages a run depends on (``extra``: packages only some runs use)."""
    out = {"python": platform.python_version()}
    for name in (*_PACKAGES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def baseline_costs(lexical_fit_s: Mapping[str, float]) -> dict[str, Any]:
    """The ledger's ``baselines`` section: seconds the lexical baseline took per task (fit and score)."""
    return {"lexical_fit_time_s": {"total": round(sum(lexical_fit_s.values()), 3),
                                   **{task: round(s, 3) for task, s in sorted(lexical_fit_s.items())}}}


def data_fingerprint(example_ids: list[str], texts: list[str]) -> str:
    """A short hash of a split's content, so two runs can prove they saw the same data."""
    digest = hashlib.sha256()
    for ident, text in zip(example_ids, texts, strict=True):
        digest.update(ident.encode())
        digest.update(b"\0")
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def task_fingerprints(tasks: Mapping[str, TaskData]) -> dict[str, dict[str, Any]]:
    """Per task: examples and content hash of every split, plus where the data came from.

    Every run kind (training, prompting) records the same hashes, so a report can check that runs
    with the same seed were scored on the same test examples.
    """
    return {name: {split: {"examples": len(ex), "sha256_16": data_fingerprint(
        [e.id for e in ex], [e.text + "\0" + (e.text_pair or "") for e in ex])}
        for split, ex in data.splits.items()} | {"source": data.source, "path": data.path}
        for name, data in tasks.items()}


def git_commit() -> str | None:
    """The commit of the installed mtpeft checkout, when it is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class TrainCounters:
    """Running totals the loop updates at every micro-step."""

    optimizer_steps: int = 0
    examples: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    attention_cells: int = 0
    target_tokens: int = 0  # generation targets: positions through the LM head
    examples_per_task: dict[str, int] = field(default_factory=dict)

    def add(self, task: str, examples: int, real: int, padded: int, cells: int, targets: int = 0) -> None:
        self.examples += examples
        self.real_tokens += real
        self.padded_tokens += padded
        self.attention_cells += cells
        self.target_tokens += targets
        self.examples_per_task[task] = self.examples_per_task.get(task, 0) + examples

    @classmethod
    def combined(cls, per_process: list[TrainCounters]) -> TrainCounters:
        """The totals of a distributed run: every process's work counted once (optimiser steps are shared)."""
        total = cls(optimizer_steps=max(c.optimizer_steps for c in per_process))
        for c in per_process:
            total.examples += c.examples
            total.real_tokens += c.real_tokens
            total.padded_tokens += c.padded_tokens
            total.attention_cells += c.attention_cells
            total.target_tokens += c.target_tokens
            for task, count in c.examples_per_task.items():
                total.examples_per_task[task] = total.examples_per_task.get(task, 0) + count
        return total

