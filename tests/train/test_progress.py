"""The progress line prices the whole run: every remaining step at the measured training rate, every remaining
evaluation example at the measured (or, before any, the estimated) evaluation rate."""

from __future__ import annotations

import pytest

from mtpeft.train import progress as progress_module
from mtpeft.train.progress import FORWARD_SPEEDUP, EvaluationWork, RunProgress, clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45.9, "45s"), (750, "12m 30s"), (3840, "1h 04m"),
                                               (-3, "0s")])
def test_clock_reads_at_a_glance(seconds, text):
    assert clock(seconds) == text


def test_time_left_counts_the_epochs_to_come_and_every_evaluation(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "perf_counter", fake)
    run = RunProgress(total_steps=100, done_steps=0, work=EvaluationWork(validation=200, test=500, passes=2),
                      epochs=2, enabled=False)
    for _ in range(10):
        run.stepped(examples=16, seconds=0.5, epoch=0, losses={"t": 0.7})
    assert run.train_rate() == pytest.approx(32.0)
    # no evaluation yet: a forward pass is priced at a third of a training step per example
    before = 90 * 0.5 + (2 * 200 + 500) / (FORWARD_SPEEDUP * 32.0)
    assert run.remaining_s() == pytest.approx(before)
    with run.evaluating("validation", 200) as advance:
        fake.now += 4.0  # 200 examples in 4 s: 50 examples/s
        advance(200)
    assert run.eval_rate() == pytest.approx(50.0)
    assert run.remaining_s() == pytest.approx(90 * 0.5 + (200 + 500) / 50.0)
    with run.evaluating("test", 500) as advance:
        fake.now += 10.0
        advance(500)
    assert run.remaining_s() == pytest.approx(90 * 0.5 + 200 / 50.0)  # one validation pass left, no test


def test_a_resumed_run_starts_part_of_the_way():
    run = RunProgress(total_steps=40, done_steps=30, work=EvaluationWork(10, 10, 1), epochs=4, enabled=False)
    assert run.done_steps == 30 and run.bar.total == 40


@pytest.mark.slow
def test_training_shows_the_step_the_rate_and_the_time_left_for_the_run(tmp_path, tiny_jsonl_task, capsys):
    from mtpeft.train import train
    from tests.train.test_training import config

    train(config(tmp_path, tiny_jsonl_task, train__epochs=2), progress=True)
    shown = capsys.readouterr().err
    assert "train:" in shown and "ex/s=" in shown and "run left=" in shown and "epoch=2/2" in shown
    assert "validation:" in shown and "test:" in shown
