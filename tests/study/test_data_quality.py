"""Data-quality signals on crafted splits with known duplicates, leakage and label conflicts."""

from __future__ import annotations

import pytest

from mtpeft.study.data_quality import quality_signals
from mtpeft.tasks.load import TaskData
from mtpeft.tasks.registry import TASKS
from mtpeft.tasks.spec import Example

BODY = "int parse(char *s) {{ int total = 0; for (int i = 0; s[i]; i++) total = total * 10 + s[i] - '0'; return {}; }}"


def ex(ident: str, text: str, label: int | None = None, pair: str | None = None) -> Example:
    return Example(ident, text, pair, label)


def vulnerability() -> TaskData:
    train = [ex(f"t{i}", BODY.format(f"total + {i}"), i % 2) for i in range(20)]
    train.append(ex("dup", BODY.format("total + 0"), 1))  # same input as t0 (label 0): duplicate and conflict
    test = [ex("leak", "  " + BODY.format("total + 3").replace(" ", "   "), 1),  # t3 with other whitespace
            ex("near", BODY.format("total + 5") + " /* checked */", 1),  # t5 plus a comment: near duplicate
            ex("new", "void unrelated(void) { puts(\"hello world from a completely different function\"); }", 0)]
    return TaskData(TASKS.get("vulnerability"), {"train": train, "validation": train[:2], "test": test}, "x", None)


def search() -> TaskData:
    rows = [ex(f"q{i}", f"query {i}", pair=f"def f{i}(x): return x + {i} * 2 - 1") for i in range(5)]
    return TaskData(TASKS.get("search"), {"train": rows, "validation": rows[:1], "test": [rows[0]]}, "x", None)


def test_balance_duplicates_leakage_and_conflicts() -> None:
    signals = quality_signals({"vulnerability": vulnerability(), "search": search()})
    vuln = signals["tasks"]["vulnerability"]
    assert vuln["train"]["examples"] == 21
    assert vuln["train"]["positive_share"] == pytest.approx(round(11 / 21, 4))
    assert vuln["train"]["duplicate_share"] == pytest.approx(round(1 / 21, 4))
    assert vuln["test"]["exact_in_train_share"] == pytest.approx(round(1 / 3, 4))  # whitespace does not hide a copy
    assert vuln["test"]["near_in_train_share"] == pytest.approx(round(2 / 3, 4))  # the copy and the commented one
    # t0 and dup share an input with labels 0 and 1; validation repeats t0 too: 3 of 26 examples
    assert vuln["label_conflict_share"] == pytest.approx(round(3 / 26, 4))
    assert signals["tasks"]["search"]["test"]["exact_in_train_share"] == 1.0
    assert "positive_share" not in signals["tasks"]["search"]["train"]
    assert "label_conflict_share" not in signals["tasks"]["search"]
    assert signals["shared_inputs"]["vulnerability"]["search"] == 0.0
