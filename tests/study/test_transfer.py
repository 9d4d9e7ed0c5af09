"""Transfer-matrix arithmetic, asymmetry, complementarity and stability on hand-made runs."""

from __future__ import annotations

import numpy as np
import pytest

from mtpeft.study.collect import RunRecord
from mtpeft.study.grid import setting_of
from mtpeft.study.transfer import model_methods, transfer
from tests.study.records import fake_record

TASKS = ["a", "b", "c"]


def run(scores: dict[str, float], seed: int) -> RunRecord:
    tasks = sorted(scores)
    return fake_record(f"{'+'.join(tasks)}-{seed}", scores, setting_of(tasks, TASKS), seed=seed)


def runs() -> list[RunRecord]:
    out = []
    for seed, shift in ((1, 0.0), (2, 0.02)):
        out += [run({"a": 0.60 + shift}, seed), run({"b": 0.70}, seed), run({"c": 0.50}, seed),
                run({"a": 0.65 + shift, "b": 0.72}, seed),  # a and b help each other
                run({"a": 0.58 + shift, "c": 0.55}, seed),  # c gains from a, a loses: asymmetric
                run({"b": 0.66 - shift, "c": 0.45}, seed),  # both lose
                run({"a": 0.61 + shift, "b": 0.69, "c": 0.52}, seed)]
    return out


def test_matrix_is_pair_minus_alone_averaged_over_seeds() -> None:
    t = transfer(runs(), "m", "lora")
    assert t.tasks == TASKS and t.seeds == [1, 2]
    expected = np.array([[np.nan, 0.05, -0.02], [0.02, np.nan, -0.04 - 0.01], [0.05, -0.05, np.nan]])
    np.testing.assert_allclose(t.matrix, expected, atol=1e-9)
    assert t.spread[1, 2] == pytest.approx(np.std([-0.04, -0.06], ddof=1))
    assert t.spread[0, 1] == pytest.approx(0.0)
    assert t.versus_all[0, 1] == pytest.approx(0.04)  # 0.65 - 0.61


def test_asymmetry_complementarity_and_negative_transfer() -> None:
    t = transfer(runs(), "m", "lora")
    pairs = {(p["a"], p["b"]): p for p in t.pairs()}
    assert pairs[("a", "b")]["complementary"] and not pairs[("a", "b")]["conflicting"]
    assert pairs[("a", "c")]["asymmetry"] == pytest.approx(-0.02 - 0.05)
    assert pairs[("b", "c")]["conflicting"]
    assert t.negative() == []  # every task gains with someone
    stability = t.stability()
    assert stability["a"]["alone_std_over_seeds"] == pytest.approx(np.std([0.60, 0.62], ddof=1))
    assert stability["b"]["worst_transfer"] == pytest.approx(-0.05)
    assert stability["c"]["transfer_std_over_partners"] == pytest.approx(np.std([0.05, -0.05], ddof=1))


def test_a_task_that_loses_everywhere_is_flagged() -> None:
    records = [run({"a": 0.60}, 1), run({"b": 0.70}, 1), run({"c": 0.50}, 1), run({"a": 0.55, "b": 0.71}, 1),
               run({"a": 0.50, "c": 0.52}, 1), run({"b": 0.72, "c": 0.51}, 1)]
    assert transfer(records, "m", "lora").negative() == ["a"]


def test_a_two_task_study_reads_its_all_in_one_run_as_the_pair() -> None:
    records = [fake_record(f"{name}-1", scores, setting_of(sorted(scores), ["a", "b"]), seed=1)
               for name, scores in (("a", {"a": 0.60}), ("b", {"b": 0.70}), ("ab", {"a": 0.64, "b": 0.69}))]
    assert records[2].setting == "mft" and records[2].is_pair
    t = transfer(records, "m", "lora")
    np.testing.assert_allclose(t.matrix, [[np.nan, 0.04], [-0.01, np.nan]], atol=1e-9)
    assert model_methods(records) == [("m", "lora")]
