"""What a task is: a kind, a main metric, and the typed examples it is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskKind(StrEnum):
    """The three shapes of task the paper uses.

    - ``binary``: one input -> yes/no (vulnerability, flakiness, bug).
    - ``pair``: two inputs encoded jointly -> yes/no (clone detection).
    - ``retrieval``: a natural-language query vs code, each encoded separately (code search).
    """

    BINARY = "binary"
    PAIR = "pair"
    RETRIEVAL = "retrieval"


CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "mcc")
RETRIEVAL_METRICS = ("mrr", "recall@1", "recall@5", "recall@10")
METRIC_NAMES: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.BINARY: CLASSIFICATION_METRICS,
    TaskKind.PAIR: CLASSIFICATION_METRICS,
    TaskKind.RETRIEVAL: RETRIEVAL_METRICS,
}
"""Metric names per kind; every one is higher-is-better (the ``*_score`` convention of sklearn)."""


@dataclass(frozen=True, slots=True)
class Example:
    """One example of any kind.

    ``text`` is the code (binary), the first function (pair) or the query (retrieval);
    ``text_pair`` is the second function (pair) or the code (retrieval). ``label`` is 0/1 for
    classification and None for retrieval. ``group`` keeps related examples in one split
    (a commit, a project); ``meta`` carries provenance (file, line, clone type, ...).
    """

    id: str
    text: str
    text_pair: str | None = None
    label: int | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A built-in task: its kind, main metric and the default source that feeds it."""

    name: str
    kind: TaskKind
    metric: str
    description: str
    default_source: str | None = None
    default_path: str | None = None

    @property
    def is_classification(self) -> bool:
        return self.kind in (TaskKind.BINARY, TaskKind.PAIR)
