"""Which task batches make up each optimiser step of an epoch.

An epoch plan is a list of steps; a step is a list of ``(task, example indices)`` batches whose
losses are combined into one update. Plans are a pure function of ``(seed, epoch)``, so a resumed
run rebuilds the same plan and skips the steps it already took.

- ``round_robin`` (the paper): every step holds one batch of every task; the epoch ends when the
  largest task is exhausted, smaller tasks are reshuffled and re-sampled until then.
- ``proportional`` / ``temperature``: every step holds one batch of one task, drawn with probability
  proportional to ``size ** T`` (T = 1 for proportional); the epoch has as many steps as batches.

Within a task, batches are length-bucketed: shuffled, cut into mega-batches, grouped by length inside
each mega-batch (input by input for two-input tasks, ``collate.similar_size_batches``), so batches pad
little but still differ from epoch to epoch. ``repeats`` (an oversampled class) makes an example appear
that many times per epoch, each copy in a pass of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from functools import partial

from mtpeft.data.collate import Size, similar_size_batches

Step = list[tuple[str, list[int]]]
_MEGA = 32  # batches per mega-batch when bucketing by length


def task_batches(sizes: Sequence[Size], batch_size: int, rng: random.Random, bucket: bool = True,
                 repeats: Sequence[float] | None = None) -> list[list[int]]:
    """One pass over a task's examples (``sizes``: tokens of each) as shuffled batches (length-bucketed when
    ``bucket``).

    With ``repeats``, example ``i`` appears ``repeats[i]`` times: every copy beyond the first comes in a pass of its
    own (the fractional part as a fixed number of randomly chosen examples), batched apart, so no batch holds two
    copies of one example and every epoch has as many batches.
    """
    passes = [list(range(len(sizes))), *extra_passes(repeats or [], rng)]
    batches = [batch for order in passes for batch in _batched(order, sizes, batch_size, rng, bucket)]
    rng.shuffle(batches)
    return batches


def extra_passes(repeats: Sequence[float], rng: random.Random) -> list[list[int]]:
    """Pass ``k`` (from 1) holds the examples repeated more than ``k`` times; of those repeated between ``k`` and
    ``k + 1`` times, ``round(sum of their fractions)`` chosen at random."""
    passes = []
    for k in range(1, math.ceil(max(repeats, default=1))):
        whole = [i for i, r in enumerate(repeats) if r >= k + 1]
        partial = [i for i, r in enumerate(repeats) if k < r < k + 1]
        passes.append(whole + rng.sample(partial, round(sum(repeats[i] - k for i in partial))))
    return passes


def _batched(order: list[int], sizes: Sequence[Size], batch_size: int, rng: random.Random,
             bucket: bool) -> list[list[int]]:
    rng.shuffle(order)
    if not bucket:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    mega = batch_size * _MEGA
    return [batch for start in range(0, len(order), mega)
            for batch in similar_size_batches(order[start:start + mega], sizes, batch_size)]


def sampling_probabilities(sizes: dict[str, int], temperature: float) -> dict[str, float]:
    """``p_t = n_t^T / sum_s n_s^T`` (T = 1: proportional; T -> 0: uniform)."""
    weights = {t: n ** temperature for t, n in sizes.items()}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def epoch_plan(
    sizes: dict[str, Sequence[Size]],
    batch_size: int,
    strategy: str,
    temperature: float,
    seed: int,
    epoch: int,
    bucket: bool = True,
    repeats: dict[str, Sequence[float]] | None = None,
) -> list[Step]:
    """The steps of one epoch for tasks with the given per-example token sizes (and ``repeats`` per example
    of the tasks that oversample)."""
    rng = random.Random(f"{seed}:{epoch}")
    tasks = sorted(sizes)
    batches = {t: partial(task_batches, sizes[t], batch_size, rng, bucket, (repeats or {}).get(t)) for t in tasks}
    if strategy == "round_robin":
        return _round_robin(batches, tasks)
    if strategy in ("proportional", "temperature"):
        t = 1.0 if strategy == "proportional" else temperature
        examples = {task: sum((repeats or {}).get(task) or [1] * len(sizes[task])) for task in tasks}
        return _sampled(batches, examples, tasks, rng, t)
    raise ValueError(f"unknown sampling strategy {strategy!r}; valid: proportional, round_robin, temperature")


def _round_robin(batches: dict[str, Callable[[], list[list[int]]]], tasks: list[str]) -> list[Step]:
    per_task = {t: batches[t]() for t in tasks}
    steps = max(len(b) for b in per_task.values())
    for t in tasks:  # re-sample smaller tasks (fresh shuffles) until the largest is exhausted
        while len(per_task[t]) < steps:
            per_task[t].extend(batches[t]())
    return [[(t, per_task[t][i]) for t in tasks] for i in range(steps)]


def _sampled(batches: dict[str, Callable[[], list[list[int]]]], sizes: dict[str, int], tasks: list[str],
             rng: random.Random, temperature: float) -> list[Step]:
    per_task = {t: batches[t]() for t in tasks}
    probs = sampling_probabilities(sizes, temperature)
    total = sum(len(b) for b in per_task.values())
    cursor = dict.fromkeys(tasks, 0)
    plan: list[Step] = []
    for task in rng.choices(tasks, weights=[probs[t] for t in tasks], k=total):
        if cursor[task] == len(per_task[task]):  # a task drawn more often than it has batches: reshuffle
            per_task[task].extend(batches[task]())
        plan.append([(task, per_task[task][cursor[task]])])
        cursor[task] += 1
    return plan


def shard_plan(plan: list[Step], rank: int, world: int) -> list[Step]:
    """This process's steps under data parallelism: every ``world``-th step, equal counts on all ranks."""
    per_rank = len(plan) // world if world > 1 else len(plan)
    return plan[rank::world][:per_rank]
