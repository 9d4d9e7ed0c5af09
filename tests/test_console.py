"""What the console says a run achieved: where it stands against the lexical baseline, and what to try next."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft import console


@pytest.fixture
def printed(monkeypatch):
    from rich.console import Console

    recorder = Console(record=True, width=200)
    monkeypatch.setattr(console, "console", recorder)
    return recorder


@pytest.mark.parametrize(("scored", "says"), [
    ({"a": (0.9, 0.5), "b": (0.7, 0.6), "c": (0.6, 0.55)}, "above it on 3 of 3 tasks; mean 0.7333 against 0.5500"),
    ({"a": (0.9, 0.5), "b": (0.5, 0.6), "c": (0.6, 0.55)}, "above it on 2 of 3 tasks (not on b); mean 0.6667"),
    ({"a": (0.5, 0.5)}, "above it on 0 of 1 tasks (not on a)"),  # a tie is not a win
])
def test_the_verdict_against_the_lexical_baseline_counts_tasks_and_means(printed, scored, says):
    console.print_against_lexical(scored, "test")
    assert says in printed.export_text()


def test_a_finished_run_says_what_to_try_next_with_its_own_path_and_task(printed):
    console.print_next_commands(Path("runs/quickstart"), "search")
    text = printed.export_text()
    for command in ("mtpeft eval runs/quickstart", "mtpeft predict runs/quickstart --task search --input",
                    "mtpeft serve runs/quickstart"):
        assert command in text
