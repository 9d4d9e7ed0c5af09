"""Grouping search on hand-made affinity matrices."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from mtpeft.study.grouping import best_grouping, partition_gain, set_partitions


@pytest.mark.parametrize(("n", "k", "count"), [(3, 3, 5), (4, 4, 15), (5, 5, 52), (4, 2, 8), (5, 2, 16), (5, 1, 1)])
def test_set_partitions_count_bell_and_summed_stirling_numbers(n: int, k: int, count: int) -> None:
    parts = list(set_partitions(list(range(n)), k))
    assert len(parts) == count
    assert all(sorted(i for g in p for i in g) == list(range(n)) for p in parts)
    assert len({tuple(sorted(tuple(sorted(g)) for g in p)) for p in parts}) == count


def test_gain_is_the_mean_pairwise_affinity_within_groups() -> None:
    s = np.array([[0, 0.2, 0.4], [0.1, 0, -0.3], [0.0, 0.6, 0]])
    total, per_task = partition_gain(s, [[0, 1, 2]])
    assert per_task == pytest.approx([0.3, -0.1, 0.3]) and total == pytest.approx(0.5)
    assert partition_gain(s, [[0], [1], [2]])[0] == 0


def test_two_cliques_are_found_and_a_spoiler_stays_alone() -> None:
    # tasks 0-1 and 2-3 help each other; 4 hurts everyone and is hurt by everyone
    s = np.full((5, 5), -0.2)
    s[0, 1] = s[1, 0] = s[2, 3] = s[3, 2] = 0.3
    names = ["a", "b", "c", "d", "e"]
    assert best_grouping(s, names, 3).groups == [["a", "b"], ["c", "d"], ["e"]]
    two = best_grouping(s, names, 2)
    assert len(two.groups) == 2 and two.search == "exhaustive"


def test_exhaustive_beats_or_matches_every_partition() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(0, 0.1, (6, 6))
    best = best_grouping(s, list("abcdef"), 3)
    index = {t: i for i, t in enumerate("abcdef")}
    chosen = [[index[t] for t in g] for g in best.groups]
    assert best.gain == pytest.approx(partition_gain(s, chosen)[0])
    assert all(partition_gain(s, p)[0] <= best.gain + 1e-12 for p in set_partitions(list(range(6)), 3))


def test_greedy_beyond_the_exhaustive_limit_respects_the_budget() -> None:
    rng = np.random.default_rng(1)
    s = rng.normal(0, 0.1, (12, 12))
    for block in ([0, 1, 2], [3, 4, 5, 6]):
        for i, j in product(block, block):
            s[i, j] = 0.5
    grouping = best_grouping(s, [f"t{i}" for i in range(12)], 3)
    assert grouping.search == "greedy" and len(grouping.groups) <= 3
    assert any({"t0", "t1", "t2"} <= set(g) for g in grouping.groups)
    assert any({"t3", "t4", "t5", "t6"} <= set(g) for g in grouping.groups)
