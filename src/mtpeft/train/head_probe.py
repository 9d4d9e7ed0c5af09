"""Fit the task heads on the untrained model's features before fine-tuning: LP-FT (Kumar et al., ICLR 2022,
"Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution").

A fresh head is random: in the first steps of fine-tuning its gradients push the shared module towards whatever
the random head reads, and at CPU scale (a few hundred steps) the run may end before the head has caught up. A
linear probe of frozen MiniLM features already beat the fine-tuned model on clone detection (see
docs/results.md). So, before the first step: one pass over the training data without gradients caches each
input's pooled vector as the model computes it at step 0 (a LoRA starts as the identity), then each head trains
for ``train.probe_epochs`` epochs on those vectors alone (seconds: the heads are small). Fine-tuning then starts
from heads that already read the pretrained features.

Off by default: measured on clone pairs (siamese, 2,000 training pairs), 10 probe epochs lowered test F1 by 0.020
at 1.49x the FLOPs; the head fitted to near-zero loss left fine-tuning little to learn from (docs/results.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mtpeft.data.collate import chunks_by_size, collate
from mtpeft.data.encode import EncodedSplit
from mtpeft.data.samplers import task_batches
from mtpeft.evaluate.sharding import Shard
from mtpeft.models.heads import RetrievalHead
from mtpeft.models.multitask import MultiTaskModel
from mtpeft.tasks.spec import TaskKind


@dataclass
class ProbeWork:
    """What the probe computed, for the ledger and the log: the frozen pass (its tokens, like training's) and
    each head's mean loss per probe epoch."""

    examples: int = 0
    padded_tokens: int = 0
    attention_cells: int = 0
    losses: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Features:
    """A task's cached training vectors: one tensor per input (two for a pair encoded apart and for retrieval),
    and the labels of classification tasks."""

    inputs: tuple[torch.Tensor, ...]
    labels: torch.Tensor | None


@torch.no_grad()
def frozen_features(model: MultiTaskModel, task: str, split: EncodedSplit, pad_id: int, batch_size: int,
                    device: Any, autocast: Callable[[], AbstractContextManager[Any]], work: ProbeWork,
                    shard: Shard | None = None, progress: bool = False) -> Features:
    """Every training example's pooled vector(s) as the model computes them now, in eval mode (no dropout);
    ``shard``: in a distributed run each process computes its share and every process gets all of them."""
    shard = shard or Shard()
    mine, count = shard.indices(len(split)), len(split)
    sizes = split.input_sizes()
    sides = 2 if split.two_inputs else 1
    out = [np.zeros((len(mine), model.hidden), dtype=np.float32) for _ in range(sides)]
    was_training = model.training
    model.eval()
    try:
        chunks = chunks_by_size([sizes[i] for i in mine], batch_size)
        for chunk in tqdm(chunks, desc=f"features of {task}", disable=not progress, dynamic_ncols=True):
            batch = collate(split, [mine[i] for i in chunk], pad_id).to(device)
            with autocast():
                vectors = model.input_vectors(task, batch)
            for side, v in zip(out, vectors, strict=True):
                side[chunk] = v.float().cpu().numpy()
            work.examples += len(batch)
            work.padded_tokens += batch.padded_tokens
            work.attention_cells += batch.attention_cells
    finally:
        model.train(was_training)
    inputs = tuple(torch.from_numpy(shard.gather(side, count)) for side in out)
    labels = None if split.kind is TaskKind.RETRIEVAL else torch.tensor(split.labels, dtype=torch.float32)
    return Features(inputs, labels)


def fit_head(head: nn.Module, features: Features, epochs: int, batch_size: int, lr: float, seed: int,
             repeats: list[float] | None = None) -> list[float]:
    """Train ``head`` alone on cached vectors with AdamW and its own loss; the mean loss of each epoch.

    Batches are drawn as in training (``repeats``: an oversampled class comes as often as it will in training;
    retrieval: in-batch negatives of ``batch_size``)."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0)
    device = next(head.parameters()).device
    rng = random.Random(seed)
    count = len(features.inputs[0])
    was_training = head.training
    head.train()
    losses = []
    try:
        for _ in range(epochs):
            total, batches = 0.0, task_batches([1] * count, batch_size, rng, bucket=False, repeats=repeats)
            for idx in batches:
                sides = [side[idx].to(device) for side in features.inputs]
                if isinstance(head, RetrievalHead):
                    loss = head.loss(head(sides[0]), head(sides[1]))
                else:
                    loss = head.loss(head(*sides), features.labels[idx].to(device))  # type: ignore[index]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
            losses.append(total / max(len(batches), 1))
    finally:
        head.train(was_training)
    return losses


def probe_heads(model: MultiTaskModel, encoded: dict[str, dict[str, EncodedSplit]], pad_id: int, cfg: Any,
                device: Any, autocast: Callable[[], AbstractContextManager[Any]], shard: Shard,
                repeats: dict[str, list[float]], progress: bool = False) -> ProbeWork:
    """Fit every task head (not generation: it has no head of its own) on the model's current features of
    its training split; ``cfg``: the run's ``TrainConfig``; ``progress``: a bar per task's frozen pass."""
    work = ProbeWork()
    for task in sorted(model.heads):
        if model.kinds[task] is TaskKind.GENERATION:
            continue
        features = frozen_features(model, task, encoded[task]["train"], pad_id, cfg.eval_batch_size, device,
                                   autocast, work, shard, progress)
        work.losses[task] = fit_head(model.heads[task], features, cfg.probe_epochs, cfg.batch_size,
                                     cfg.head_lr or cfg.lr, cfg.seed, repeats.get(task))
    return work
