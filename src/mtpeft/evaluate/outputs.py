"""What a system answered on one split, and how it is scored: shared by the model, the lexical baseline and
prompting, so that every one of them is judged by the same threshold rule and the same metric code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtpeft.evaluate.generation import generation_scores
from mtpeft.evaluate.metrics import classification_scores, ranking_scores, retrieval_ranks, retrieval_scores
from mtpeft.tasks.spec import TaskKind

DEFAULT_THRESHOLD = 0.5
"""Decision threshold of a classifier before (or without) tuning on validation."""


@dataclass
class SplitOutput:
    """Raw outputs for one split: probabilities (classification), the score matrix (retrieval), or
    generated texts with their references (generation)."""

    kind: TaskKind
    example_ids: list[str]
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    scores: np.ndarray | None = None  # (queries, candidates)
    texts: list[str] | None = None  # generation: what the system wrote
    references: list[str] | None = None  # generation: what it should have written
    language: str | None = None  # generation: the references' language (None: English)
    extra: dict[str, Any] = field(default_factory=dict)


def best_threshold(labels: np.ndarray, probabilities: np.ndarray, metric: str) -> float:
    """The decision threshold that maximises ``metric`` on these labels (ties: closest to 0.5).

    Chosen on the validation split and then applied unchanged to test, so imbalanced tasks
    (flakiness: ~3% positive) are not judged at an arbitrary 0.5.
    """
    candidates = np.unique(np.concatenate([[DEFAULT_THRESHOLD], probabilities]))
    best, best_score = DEFAULT_THRESHOLD, -np.inf
    for t in sorted(candidates, key=lambda c: abs(c - DEFAULT_THRESHOLD)):
        score = classification_scores(labels, probabilities >= t)[metric]
        if score > best_score + 1e-12:
            best, best_score = float(t), score
    return best


def score(output: SplitOutput, threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """All metrics of the task's kind for one split's outputs."""
    if output.kind is TaskKind.GENERATION:
        return generation_scores(output.texts or [], output.references or [], output.language)
    if output.kind is TaskKind.RETRIEVAL:
        return retrieval_scores(output.scores)
    return (classification_scores(output.labels, output.probabilities >= threshold)
            | ranking_scores(output.labels, output.probabilities))


def prediction_rows(output: SplitOutput, threshold: float = DEFAULT_THRESHOLD, top_k: int = 5) -> list[dict[str, Any]]:
    """One JSON-ready row per example: label/probability/prediction, rank and top-k for retrieval, or the
    generated text and its reference.

    Probabilities are written unrounded: ``mtpeft compare`` recomputes ROC AUC and average precision from them, and
    rounding would tie a confident model's scores near 0 and 1 and move those metrics away from the run's own.
    """
    if output.kind is TaskKind.GENERATION:
        return [{"id": ident, "prediction": text, "reference": ref}
                for ident, text, ref in zip(output.example_ids, output.texts or [], output.references or [],
                                            strict=True)]
    if output.kind is TaskKind.RETRIEVAL:
        ranks = retrieval_ranks(output.scores)
        top = np.argsort(-output.scores, axis=1, kind="stable")[:, :top_k]
        return [{"id": ident, "rank": int(rank), "top": [output.example_ids[j] for j in row]}
                for ident, rank, row in zip(output.example_ids, ranks, top, strict=True)]
    return [{"id": ident, "label": int(label), "probability": float(p), "prediction": int(p >= threshold)}
            for ident, label, p in zip(output.example_ids, output.labels, output.probabilities, strict=True)]
