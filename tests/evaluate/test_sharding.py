"""Evaluation shared out across processes comes back whole: each example computed by exactly one process and
returned in the split's order, also when the count does not divide evenly."""

from __future__ import annotations

import numpy as np
import pytest

from mtpeft.evaluate.sharding import Shard


@pytest.mark.parametrize(("count", "world"), [(10, 3), (2, 3), (7, 2), (0, 2), (5, 1)])
def test_shares_cover_every_example_once_and_gather_in_order(count, world, monkeypatch):
    shards = [Shard(rank, world) for rank in range(world)]
    owned = sorted(i for shard in shards for i in shard.indices(count))
    assert owned == list(range(count))  # no example twice, none dropped
    values = np.arange(count * 2, dtype=np.float32).reshape(count, 2) * 10
    texts = [f"text {i}" for i in range(count)]
    arrays = [values[shard.indices(count)] for shard in shards]
    lists = [[texts[i] for i in shard.indices(count)] for shard in shards]
    def all_gather(shard: Shard, value: object) -> list:  # every process receives every share
        return arrays if isinstance(value, np.ndarray) else lists

    monkeypatch.setattr(Shard, "_all_gather", all_gather)
    for shard in shards:
        np.testing.assert_array_equal(shard.gather(arrays[shard.rank], count), values)
        assert shard.gather_list(lists[shard.rank], count) == texts
