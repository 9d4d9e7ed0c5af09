"""Run a multi-task model over encoded splits: its outputs per task (scored by :mod:`mtpeft.evaluate.outputs`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mtpeft.data.collate import Rows, chunks_by_size, collate
from mtpeft.data.encode import EncodedSplit
from mtpeft.evaluate.outputs import SplitOutput
from mtpeft.evaluate.sharding import Shard
from mtpeft.tasks.spec import TaskKind

if TYPE_CHECKING:
    from mtpeft.models.generation import TextGenerator


@torch.no_grad()
def run_split(model: Any, task: str, split: EncodedSplit, pad_id: int, batch_size: int, device: Any,
              autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
              generator: TextGenerator | None = None, shard: Shard | None = None,
              advance: Callable[[int], None] = lambda done: None) -> SplitOutput:
    """Model outputs for every example of ``split``, batched by length (outputs in the split's order).

    ``autocast`` makes a fresh mixed-precision context per use (e.g. ``accelerator.autocast``);
    ``generator`` decodes generation tasks (through the same shared module as ``model``); ``shard``: in a
    distributed run, this process computes its share of the examples and receives everyone's outputs;
    ``advance`` is told how many of this process's examples each batch finished (a progress bar).
    """
    was_training = model.training
    model.eval()
    shard = shard or Shard()
    mine, count = shard.indices(len(split)), len(split)
    try:
        if split.kind is TaskKind.GENERATION:
            if generator is None:
                raise ValueError(f"task {task!r} is a generation task; run_split needs a generator")
            with autocast():
                texts = generator.generate([split.ids[i] for i in mine], split.max_new_tokens, batch_size, device,
                                           desc=task)
            advance(len(mine))
            return SplitOutput(split.kind, split.example_ids, texts=shard.gather_list(texts, count),
                               references=list(split.references), language=split.language)
        if split.kind is TaskKind.RETRIEVAL:
            with autocast():
                queries = embed(model, task, [split.rows(i) for i in mine], pad_id, batch_size, device)
                codes = embed(model, task, [split.rows(i, True) for i in mine], pad_id, batch_size, device, advance)
            queries, codes = (torch.from_numpy(shard.gather(side.numpy(), count)) for side in (queries, codes))
            return SplitOutput(split.kind, split.example_ids, scores=(queries @ codes.T).numpy())
        sizes = split.input_sizes()
        probs = np.zeros(len(mine), dtype=np.float64)
        for chunk in chunks_by_size([sizes[i] for i in mine], batch_size):
            batch = collate(split, [mine[i] for i in chunk], pad_id).to(device)
            with autocast():
                logits = model(task, batch)["logits"]
            probs[chunk] = torch.sigmoid(logits.float()).cpu().numpy()
            advance(len(chunk))
        return SplitOutput(split.kind, split.example_ids, labels=np.asarray(split.labels),
                           probabilities=shard.gather(probs, count))
    finally:
        model.train(was_training)


@torch.no_grad()
def embed(model: Any, task: str, inputs: list[list[list[int]]], pad_id: int, batch_size: int,
          device: Any, advance: Callable[[int], None] = lambda done: None) -> torch.Tensor:
    """Retrieval embeddings ``(len(inputs), dim)`` of inputs given as their token rows (one, or one per window),
    in length-sorted batches (the caller sets eval mode and autocast); shared by evaluation and serving so both
    rank alike. ``model``: a :class:`~mtpeft.models.multitask.MultiTaskModel`, or anything with its ``embed`` and
    ``embedding_dim`` (an ONNX export)."""
    out = torch.zeros(len(inputs), model.embedding_dim(task))
    for chunk in chunks_by_size([sum(map(len, rows)) for rows in inputs], batch_size):
        rows = Rows.pack([inputs[i] for i in chunk], pad_id)
        out[chunk] = model.embed(task, rows.ids.to(device), rows.mask.to(device), rows.owner, len(chunk)).float().cpu()
        advance(len(chunk))
    return out
