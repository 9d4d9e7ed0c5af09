"""What prompting one task produces: the same outputs and prediction rows as a training run, plus diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtpeft.evaluate.outputs import SplitOutput


@dataclass
class TaskResult:
    """``output`` is scored by the shared metrics; ``extra`` adds prompting-only metrics to metrics.json."""

    output: SplitOutput
    rows: list[dict[str, Any]]  # predictions/<task>.<split>.jsonl
    extra: dict[str, float] = field(default_factory=dict)
