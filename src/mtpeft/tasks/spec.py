"""What a task is: a kind, a main metric, and the typed examples it is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskKind(StrEnum):
    """The shapes of task: the paper's three, and generation.

    - ``binary``: one input -> yes/no (vulnerability, flakiness, bug).
    - ``pair``: two inputs encoded jointly -> yes/no (clone detection).
    - ``retrieval``: a natural-language query vs code, each encoded separately (code search).
    - ``generation``: an input -> a text or code target, through the model's language-model head
      (summarization, refinement, translation, test generation).
    """

    BINARY = "binary"
    PAIR = "pair"
    RETRIEVAL = "retrieval"
    GENERATION = "generation"


CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "mcc")
RETRIEVAL_METRICS = ("mrr", "recall@1", "recall@5", "recall@10")
GENERATION_METRICS = ("bleu", "smoothed_bleu", "exact_match", "codebleu", "parses")
"""``codebleu`` only for code targets in a language CodeBLEU knows, ``parses`` only for Python targets."""
METRIC_NAMES: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.BINARY: CLASSIFICATION_METRICS,
    TaskKind.PAIR: CLASSIFICATION_METRICS,
    TaskKind.RETRIEVAL: RETRIEVAL_METRICS,
    TaskKind.GENERATION: GENERATION_METRICS,
}
"""Metric names per kind; every one is higher-is-better (the ``*_score`` convention of sklearn)."""


@dataclass(frozen=True, slots=True)
class Example:
    """One example of any kind.

    ``text`` is the code (binary), the first function (pair), the query (retrieval) or the source
    (generation); ``text_pair`` is the second function (pair) or the code (retrieval). ``label`` is 0/1
    for classification and None otherwise; ``target`` is what a generation task must produce.
    ``group`` keeps related examples in one split (a commit, a project); ``meta`` carries provenance
    (file, line, clone type, ...).
    """

    id: str
    text: str
    text_pair: str | None = None
    label: int | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    target: str | None = None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A built-in task: its kind, main metric and the default source that feeds it.

    Generation tasks also have an ``instruction`` (appended to every input, so that one shared model
    knows which task it is doing) and the ``language`` of their target (``None`` for English), which
    decides the code metrics (CodeBLEU, parse rate).
    """

    name: str
    kind: TaskKind
    metric: str
    description: str
    default_source: str | None = None
    default_path: str | None = None
    instruction: str | None = None
    language: str | None = None

    @property
    def is_classification(self) -> bool:
        return self.kind in (TaskKind.BINARY, TaskKind.PAIR)
