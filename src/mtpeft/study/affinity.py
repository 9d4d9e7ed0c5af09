"""Cheap task-affinity estimates from a short joint warm-up, on the shared PEFT parameters only.

Two signals per warm-up step, averaged over steps:

* gradient cosine: ``cos(g_a, g_b)`` between the tasks' gradients of the shared module (conflicting
  gradients point apart);
* lookahead affinity (TAG, Fifty et al., NeurIPS 2021): take a plain SGD step on task ``b``'s gradient,
  ``theta' = theta - lr * g_b``, and measure how task ``a``'s loss on its own batch changes:
  ``Z[a, b] = 1 - L_a(theta') / L_a(theta)`` (positive: ``b``'s step helps ``a``).

The warm-up then takes one real optimiser step on the summed task losses, so the estimates follow the
first steps of joint training. Losses are computed in fp32 and without dropout, so that the lookahead
sees only the weight change. Heads are task-specific and stay out of both signals.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, count, islice

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mtpeft.config import RunConfig
from mtpeft.data.collate import Batch, collate
from mtpeft.data.samplers import epoch_plan
from mtpeft.ledger import FlopModel, attended_pairs, flop_model
from mtpeft.run.build import assemble
from mtpeft.train.optim import make_optimizer


@dataclass(frozen=True)
class AffinityEstimate:
    tasks: list[str]
    cosine: np.ndarray  # (tasks, tasks)
    lookahead: np.ndarray  # (tasks, tasks): row task's relative loss drop after a step on the column task
    steps: int
    time_s: float
    flops: int


def estimate_affinity(config: RunConfig, steps: int = 20, lookahead_lr: float | None = None,
                      progress: bool = True) -> AffinityEstimate:
    """Warm up ``config``'s model jointly for ``steps`` steps and average both signals over them."""
    start = time.perf_counter()
    torch.manual_seed(config.train.seed)
    built = assemble(config)
    model = built.model
    tasks = sorted(built.tasks)
    shared = [p for p in model.encoder.parameters() if p.requires_grad]
    optimizer = make_optimizer(model.encoder, [model.heads], config.train)
    sizes = {t: built.encoded[t]["train"].input_sizes() for t in tasks}
    epochs = (epoch_plan(sizes, config.train.batch_size, "round_robin", 1.0, config.train.seed, epoch,
                         repeats=built.repeats) for epoch in count())
    plan = list(islice(chain.from_iterable(epochs), steps))
    flops = flop_model(model.encoder, built.backbone.model.config)
    cosine, lookahead, spent = np.zeros((len(tasks),) * 2), np.zeros((len(tasks),) * 2), 0
    for step in tqdm(plan, desc="affinity warm-up", disable=not progress, dynamic_ncols=True):
        batches = {task: collate(built.encoded[task]["train"], idx, built.pad_id) for task, idx in step}
        grads, head_grads = task_gradients(model, batches, shared)
        cosine += cosine_matrix([grads[t] for t in tasks])
        lookahead += lookahead_affinity(model, batches, shared, grads, lookahead_lr or config.train.lr, tasks)
        _apply(optimizer, model, shared, grads, head_grads)
        spent += _step_flops(flops, batches, model.causal)
    return AffinityEstimate(tasks, cosine / len(plan), lookahead / len(plan), len(plan),
                            time.perf_counter() - start, spent)


def task_gradients(model: nn.Module, batches: dict[str, Batch], shared: list[nn.Parameter],
                   ) -> tuple[dict[str, torch.Tensor], dict[str, list[torch.Tensor | None]]]:
    """Per task: the flat gradient of its loss w.r.t. the shared parameters, and its head's gradients."""
    model.train()
    grads, head_grads = {}, {}
    for task, batch in batches.items():
        head = list(model.heads[task].parameters())
        loss = model(task, batch)["loss"]
        found = torch.autograd.grad(loss, [*shared, *head], allow_unused=True)
        grads[task] = torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                                 for g, p in zip(found[:len(shared)], shared, strict=True)])
        head_grads[task] = list(found[len(shared):])
    return grads, head_grads


def cosine_matrix(grads: list[torch.Tensor]) -> np.ndarray:
    stacked = torch.stack(grads)
    unit = stacked / stacked.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (unit @ unit.T).numpy()


@torch.no_grad()
def lookahead_affinity(model: nn.Module, batches: dict[str, Batch], shared: list[nn.Parameter],
                       grads: dict[str, torch.Tensor], lr: float, tasks: list[str]) -> np.ndarray:
    """``Z[a, b] = 1 - L_a(theta - lr * g_b) / L_a(theta)``, every loss on the same batches, in eval mode."""
    model.eval()
    before = {t: float(model(t, batches[t])["loss"]) for t in tasks}
    out = np.zeros((len(tasks), len(tasks)))
    for j, b in enumerate(tasks):
        with _moved(shared, grads[b], -lr):
            for i, a in enumerate(tasks):
                out[i, j] = 1 - float(model(a, batches[a])["loss"]) / before[a]
    model.train()
    return out


@contextmanager
def _moved(params: list[nn.Parameter], flat: torch.Tensor, scale: float) -> Iterator[None]:
    """Add ``scale * flat`` to ``params`` for the block, then put the exact old values back."""
    saved = [p.detach().clone() for p in params]
    offset = 0
    for p in params:
        p.add_(flat[offset: offset + p.numel()].view_as(p), alpha=scale)
        offset += p.numel()
    try:
        yield
    finally:
        for p, old in zip(params, saved, strict=True):
            p.copy_(old)


def _apply(optimizer: torch.optim.Optimizer, model: nn.Module, shared: list[nn.Parameter],
           grads: dict[str, torch.Tensor], head_grads: dict[str, list[torch.Tensor | None]]) -> None:
    """One optimiser step on the summed task losses, from the gradients already computed."""
    total = torch.stack(list(grads.values())).sum(dim=0)
    offset = 0
    for p in shared:
        p.grad = total[offset: offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    for task, task_grads in head_grads.items():
        for p, g in zip(model.heads[task].parameters(), task_grads, strict=True):
            p.grad = g
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _step_flops(flops: FlopModel, batches: dict[str, Batch], causal: bool) -> int:
    """Per task: one forward + backward for its gradient, one forward before and one per lookahead."""
    total = 0
    for batch in batches.values():
        tokens = batch.padded_tokens
        cells = attended_pairs(tokens, batch.attention_cells, causal)
        total += flops.training(tokens, cells)["total"] + (1 + len(batches)) * flops.forward(tokens, cells)
    return total
