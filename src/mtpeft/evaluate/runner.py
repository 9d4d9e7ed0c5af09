"""Run a multi-task model over encoded splits and score it: predictions + metrics per task."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mtpeft.data.collate import collate, pad
from mtpeft.data.encode import EncodedSplit
from mtpeft.evaluate.generation import generation_scores
from mtpeft.evaluate.metrics import classification_scores, retrieval_ranks, retrieval_scores
from mtpeft.tasks.spec import TaskKind

if TYPE_CHECKING:
    from mtpeft.models.generation import TextGenerator


@dataclass
class SplitOutput:
    """Raw model outputs for one split: probabilities (classification), the score matrix (retrieval), or
    generated texts with their references (generation)."""

    kind: TaskKind
    example_ids: list[str]
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    scores: np.ndarray | None = None  # (queries, candidates)
    texts: list[str] | None = None  # generation: what the model wrote
    references: list[str] | None = None  # generation: what it should have written
    language: str | None = None  # generation: the references' language (None: English)
    extra: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def run_split(model: Any, task: str, split: EncodedSplit, pad_id: int, batch_size: int, device: Any,
              autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
              generator: TextGenerator | None = None) -> SplitOutput:
    """Model outputs for every example of ``split``, batched by length (outputs in the split's order).

    ``autocast`` makes a fresh mixed-precision context per use (e.g. ``accelerator.autocast``);
    ``generator`` decodes generation tasks (through the same shared module as ``model``).
    """
    was_training = model.training
    model.eval()
    try:
        if split.kind is TaskKind.GENERATION:
            if generator is None:
                raise ValueError(f"task {task!r} is a generation task; run_split needs a generator")
            with autocast():
                texts = generator.generate(split.ids, split.max_new_tokens, batch_size, device, desc=task)
            return SplitOutput(split.kind, split.example_ids, texts=texts, references=list(split.references),
                               language=split.language)
        if split.kind is TaskKind.RETRIEVAL:
            with autocast():
                queries = embed(model, task, split.ids, pad_id, batch_size, device)
                codes = embed(model, task, split.pair_ids, pad_id, batch_size, device)
            return SplitOutput(split.kind, split.example_ids, scores=(queries @ codes.T).numpy())
        probs = np.zeros(len(split), dtype=np.float64)
        for chunk in length_sorted_chunks(split.ids, batch_size):
            batch = collate(split, chunk, pad_id).to(device)
            with autocast():
                logits = model(task, batch)["logits"]
            probs[chunk] = torch.sigmoid(logits.float()).cpu().numpy()
        return SplitOutput(split.kind, split.example_ids, labels=np.asarray(split.labels), probabilities=probs)
    finally:
        model.train(was_training)


@torch.no_grad()
def embed(model: Any, task: str, sequences: list[list[int]], pad_id: int, batch_size: int,
          device: Any) -> torch.Tensor:
    """Retrieval embeddings ``(len(sequences), dim)`` of token sequences, in length-sorted batches (the
    caller sets eval mode and autocast); shared by evaluation and serving so both rank alike."""
    out = torch.zeros(len(sequences), model.heads[task].proj.out_features)
    for chunk in length_sorted_chunks(sequences, batch_size):
        ids, mask = pad([sequences[i] for i in chunk], pad_id)
        out[chunk] = model.embed(task, ids.to(device), mask.to(device)).float().cpu()
    return out


def length_sorted_chunks(sequences: list[list[int]], batch_size: int) -> list[list[int]]:
    """Indices of ``sequences`` in batches of similar length, so little compute goes to padding."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def best_threshold(labels: np.ndarray, probabilities: np.ndarray, metric: str) -> float:
    """The decision threshold that maximises ``metric`` on these labels (ties: closest to 0.5).

    Chosen on the validation split and then applied unchanged to test, so imbalanced tasks
    (flakiness: ~3% positive) are not judged at an arbitrary 0.5.
    """
    candidates = np.unique(np.concatenate([[0.5], probabilities]))
    best, best_score = 0.5, -np.inf
    for t in sorted(candidates, key=lambda c: abs(c - 0.5)):
        score = classification_scores(labels, probabilities >= t)[metric]
        if score > best_score + 1e-12:
            best, best_score = float(t), score
    return best


def score(output: SplitOutput, threshold: float = 0.5) -> dict[str, float]:
    """All metrics of the task's kind for one split's outputs."""
    if output.kind is TaskKind.GENERATION:
        return generation_scores(output.texts or [], output.references or [], output.language)
    if output.kind is TaskKind.RETRIEVAL:
        return retrieval_scores(output.scores)
    return classification_scores(output.labels, output.probabilities >= threshold)


def prediction_rows(output: SplitOutput, threshold: float = 0.5, top_k: int = 5) -> list[dict[str, Any]]:
    """One JSON-ready row per example: label/probability/prediction, rank and top-k for retrieval, or the
    generated text and its reference."""
    if output.kind is TaskKind.GENERATION:
        return [{"id": ident, "prediction": text, "reference": ref}
                for ident, text, ref in zip(output.example_ids, output.texts or [], output.references or [],
                                            strict=True)]
    if output.kind is TaskKind.RETRIEVAL:
        ranks = retrieval_ranks(output.scores)
        top = np.argsort(-output.scores, axis=1, kind="stable")[:, :top_k]
        return [{"id": ident, "rank": int(rank), "top": [output.example_ids[j] for j in row]}
                for ident, rank, row in zip(output.example_ids, ranks, top, strict=True)]
    return [{"id": ident, "label": int(label), "probability": round(float(p), 6), "prediction": int(p >= threshold)}
            for ident, label, p in zip(output.example_ids, output.labels, output.probabilities, strict=True)]
