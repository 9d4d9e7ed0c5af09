"""Run a multi-task model over encoded splits: its outputs per task (scored by :mod:`mtpeft.evaluate.outputs`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mtpeft.data.collate import collate, length_sorted_chunks, pad
from mtpeft.data.encode import EncodedSplit
from mtpeft.evaluate.outputs import SplitOutput
from mtpeft.tasks.spec import TaskKind

if TYPE_CHECKING:
    from mtpeft.models.generation import TextGenerator


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
