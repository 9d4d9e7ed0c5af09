"""Which tasks to train together: the partition of tasks into at most k groups with the largest gain.

A task's gain in a group is the mean of its pairwise affinities with the group's other tasks (the
TAG approximation: a group's effect on a task is estimated from pairs); alone it gains 0.
Exhaustive over all set partitions up to ``EXHAUSTIVE_MAX`` tasks (Bell(9) = 21,147), greedy beyond.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

EXHAUSTIVE_MAX = 9


@dataclass(frozen=True)
class Grouping:
    groups: list[list[str]]
    gain: float  # sum over tasks of their estimated gain
    task_gain: dict[str, float]
    search: str  # exhaustive or greedy


def partition_gain(affinity: np.ndarray, groups: list[list[int]]) -> tuple[float, list[float]]:
    """Total and per-task gain of a partition (task indices) under a pairwise affinity matrix."""
    per_task = [0.0] * len(affinity)
    for group in groups:
        for a in group:
            others = [b for b in group if b != a]
            if others:
                per_task[a] = float(np.mean([affinity[a, b] for b in others]))
    return float(sum(per_task)), per_task


def best_grouping(affinity: np.ndarray, tasks: list[str], max_groups: int) -> Grouping:
    """The partition into at most ``max_groups`` groups that maximises the total gain.

    Example (a and b help each other, c hurts both and is hurt by them):
        >>> s = np.array([[0, .2, -.3], [.1, 0, -.2], [-.4, -.1, 0]])
        >>> best_grouping(s, ["a", "b", "c"], 2).groups
        [['a', 'b'], ['c']]
    """
    if max_groups < 1:
        raise ValueError(f"max_groups must be at least 1, got {max_groups}")
    n = len(tasks)
    if n <= EXHAUSTIVE_MAX:
        candidates: Iterator[list[list[int]]] = set_partitions(list(range(n)), max_groups)
        best = max(candidates, key=lambda groups: (partition_gain(affinity, groups)[0], -len(groups)))
        search = "exhaustive"
    else:
        best, search = _greedy(affinity, max_groups), "greedy"
    total, per_task = partition_gain(affinity, best)
    return Grouping([[tasks[i] for i in group] for group in _ordered(best)], total,
                    {tasks[i]: per_task[i] for i in range(n)}, search)


def set_partitions(items: list[int], max_groups: int) -> Iterator[list[list[int]]]:
    """Every partition of ``items`` into at most ``max_groups`` non-empty groups."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest, max_groups):
        for i in range(len(partition)):
            yield [*partition[:i], [first, *partition[i]], *partition[i + 1:]]
        if len(partition) < max_groups:
            yield [[first], *partition]


def _greedy(affinity: np.ndarray, max_groups: int) -> list[list[int]]:
    """Start alone; merge the two groups whose merge adds most gain, while it adds gain or there are
    more groups than allowed."""
    groups = [[i] for i in range(len(affinity))]
    while len(groups) > 1:
        base = partition_gain(affinity, groups)[0]
        options = [(partition_gain(affinity, [*(g for k, g in enumerate(groups) if k not in (i, j)),
                                              groups[i] + groups[j]])[0] - base, i, j)
                   for i in range(len(groups)) for j in range(i + 1, len(groups))]
        delta, i, j = max(options)
        if delta <= 0 and len(groups) <= max_groups:
            break
        groups = [*(g for k, g in enumerate(groups) if k not in (i, j)), groups[i] + groups[j]]
    return groups


def _ordered(groups: list[list[int]]) -> list[list[int]]:
    return sorted((sorted(g) for g in groups), key=lambda g: (-len(g), g))
