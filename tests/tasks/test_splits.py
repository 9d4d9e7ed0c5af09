from collections import Counter

import pytest

from mtpeft.tasks.spec import Example
from mtpeft.tasks.splits import cap_stratified, fold_split, split_examples


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


def test_folds_test_every_group_once_and_validate_on_the_next_fold():
    data = examples(600, positive_every=10, group_size=20)  # 30 groups of 20, 2 positives each
    splits = [fold_split(data, 5, fold, seed=3) for fold in range(5)]
    tested = Counter(e.group for s in splits for e in s["test"])
    assert set(tested) == {e.group for e in data} and set(tested.values()) == {20}  # every group, in one fold
    for fold, split in enumerate(splits):
        assert {e.id for e in split["validation"]} == {e.id for e in splits[(fold + 1) % 5]["test"]}
        where = {e.group: s for s, v in split.items() for e in v}
        assert all(where[e.group] == s for s, v in split.items() for e in v)  # no group straddles two splits
        assert sum(len(v) for v in split.values()) == 600
        assert sum(e.label for e in split["test"]) == 12  # stratified: a fifth of the 60 positives


def test_folds_keep_rare_positives_in_every_test_fold_despite_one_giant_group():
    # the shape of FlakeFlagger by project: one group holds a third of the data and almost no positives
    giant = [Example(f"big{i}", "x", None, int(i == 0), "big") for i in range(300)]
    data = giant + [Example(f"s{i}", "x", None, int(i % 5 == 0), f"g{i // 20}") for i in range(600)]
    positives = [sum(e.label for e in fold_split(data, 4, fold, seed=0)["test"]) for fold in range(4)]
    assert sum(positives) == 121 and min(positives) >= 20


def test_folds_need_enough_groups():
    with pytest.raises(ValueError, match="3 groups cannot fill 4 folds"):
        fold_split(examples(30, group_size=10), 4, 0, seed=0)
