from collections import Counter

import pytest

from mtpeft.data.collate import chunks_by_size
from mtpeft.data.samplers import epoch_plan, sampling_probabilities, shard_plan, task_batches

LENGTHS = {"big": list(range(100)), "small": list(range(30))}


def test_round_robin_covers_largest_task_exactly_once_per_epoch():
    plan = epoch_plan(LENGTHS, 8, "round_robin", 0.3, seed=0, epoch=0)
    assert len(plan) == 13  # ceil(100 / 8)
    assert all([t for t, _ in step] == ["big", "small"] for step in plan)
    seen = Counter(i for step in plan for t, idx in step if t == "big" for i in idx)
    assert sorted(seen) == list(range(100)) and set(seen.values()) == {1}
    small = Counter(i for step in plan for t, idx in step if t == "small" for i in idx)
    assert set(small) == set(range(30))  # re-sampled: every small example appears


def test_plans_reshuffle_per_epoch_and_repeat_per_seed():
    a = epoch_plan(LENGTHS, 8, "round_robin", 0.3, seed=0, epoch=0)
    assert a == epoch_plan(LENGTHS, 8, "round_robin", 0.3, seed=0, epoch=0)
    assert a != epoch_plan(LENGTHS, 8, "round_robin", 0.3, seed=0, epoch=1)


def test_temperature_probabilities():
    probs = sampling_probabilities({"a": 100, "b": 1}, 0.5)
    assert probs["a"] == pytest.approx(10 / 11) and probs["b"] == pytest.approx(1 / 11)
    assert sampling_probabilities({"a": 100, "b": 1}, 1.0)["a"] == pytest.approx(100 / 101)


def test_temperature_plan_draws_tasks_by_probability():
    lengths = {"a": [1] * 900, "b": [1] * 100}
    plan = epoch_plan(lengths, 1, "temperature", 0.5, seed=0, epoch=0)
    assert len(plan) == 1000 and all(len(step) == 1 for step in plan)
    share_b = sum(step[0][0] == "b" for step in plan) / len(plan)
    assert share_b == pytest.approx(100**0.5 / (900**0.5 + 100**0.5), abs=0.04)


def test_bucketing_groups_similar_lengths_without_losing_examples():
    import random

    lengths = [random.Random(i).randint(1, 500) for i in range(640)]
    batches = task_batches(lengths, 16, random.Random(0), bucket=True)
    assert sorted(i for b in batches for i in b) == list(range(640))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    unbucketed = task_batches(lengths, 16, random.Random(0), bucket=False)
    spread_plain = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in unbucketed) / len(unbucketed)
    assert spread < spread_plain / 4


def test_shard_plan_gives_equal_disjoint_steps():
    plan = [[("t", [i])] for i in range(10)]
    shards = [shard_plan(plan, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert not set.intersection(*({s[0][1][0] for s in sh} for sh in shards))


def test_oversampled_copies_never_share_a_batch_and_every_epoch_is_as_long():
    import random

    from mtpeft.data.samplers import task_batches

    lengths = [random.Random(i).randint(5, 50) for i in range(1000)]
    repeats = [3.5 if i % 27 == 0 else 1.0 for i in range(1000)]  # 38 positives, oversampled 3.5 times
    sizes = set()
    for epoch in range(3):
        batches = task_batches(lengths, 16, random.Random(epoch), repeats=repeats)
        assert all(len(batch) == len(set(batch)) for batch in batches)
        seen = [i for batch in batches for i in batch]
        positives = [i for i in seen if i % 27 == 0]
        assert len(positives) == 38 * 3 + 19  # three whole copies each, and half of them a fourth time
        assert len(seen) - len(positives) == 1000 - 38
        sizes.add(len(batches))
    assert len(sizes) == 1


def test_one_input_is_batched_in_sorted_order():
    import random

    sizes = [random.Random(i).randint(1, 500) for i in range(100)]
    order = sorted(range(100), key=sizes.__getitem__)
    assert chunks_by_size(sizes, 16) == [order[i:i + 16] for i in range(0, 100, 16)]
    assert chunks_by_size([(s,) for s in sizes], 16) == chunks_by_size(sizes, 16)
    assert chunks_by_size([], 16) == []
