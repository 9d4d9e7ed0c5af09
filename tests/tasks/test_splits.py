from collections import Counter

from mtpeft.tasks.spec import Example
from mtpeft.tasks.splits import cap_stratified, split_examples


def examples(n: int, positive_every: int = 4, group_size: int = 1) -> list[Example]:
    return [Example(f"e{i}", f"code {i}", None, int(i % positive_every == 0), f"g{i // group_size}")
            for i in range(n)]


def test_split_is_deterministic_and_keeps_groups_together():
    data = examples(300, group_size=2)
    a, b = split_examples(data, (0.8, 0.1, 0.1), seed=1), split_examples(data, (0.8, 0.1, 0.1), seed=1)
    assert {s: [e.id for e in v] for s, v in a.items()} == {s: [e.id for e in v] for s, v in b.items()}
    where = {e.group: s for s, v in a.items() for e in v}
    assert all(where[e.group] == s for s, v in a.items() for e in v)
    assert sum(len(v) for v in a.values()) == 300


def test_split_follows_ratios_and_label_balance():
    splits = split_examples(examples(1000), (0.8, 0.1, 0.1), seed=0)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [800, 100, 100]
    for part in splits.values():
        assert sum(e.label for e in part) / len(part) == 0.25


def test_cap_keeps_label_shares_and_minorities():
    data = examples(1000, positive_every=40)  # 2.5% positive
    capped = cap_stratified(data, 80, seed=0)
    assert len(capped) == 80
    assert Counter(e.label for e in capped) == {0: 78, 1: 2}
    assert cap_stratified(data, None, seed=0) is data
