"""A progress line a person can plan by: the step, examples per second, and the time left for the WHOLE run.

A per-epoch bar's ETA ignores the epochs still to come and every evaluation, which on a CPU can be a fifth of a
run. :class:`RunProgress` keeps one bar over all of the run's steps and prices what is left from the rates
measured so far: the remaining steps at the training rate, and the examples of the validation passes still to come
and of the final test at the evaluation rate (before the first evaluation, three times the training rate in
examples: a forward pass is about a third of a training step's FLOPs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tqdm.auto import tqdm

FORWARD_SPEEDUP = 3.0
"""Evaluation examples per training example in the same time, until an evaluation has been measured."""


@dataclass
class EvaluationWork:
    """Examples still to score: ``passes`` validations of ``validation`` examples, then the test split."""

    validation: int
    test: int
    passes: int

    def examples(self) -> int:
        return self.passes * self.validation + self.test


class RunProgress:
    """The training bar and the evaluation bars of one run (shown by the main process only)."""

    def __init__(self, total_steps: int, done_steps: int, work: EvaluationWork, epochs: int, enabled: bool) -> None:
        self.total_steps, self.done_steps, self.epochs, self.enabled = total_steps, done_steps, epochs, enabled
        self.work = work
        self.steps_timed = self.train_s = self.train_examples = 0.0
        self.eval_s = self.eval_examples = 0.0
        self.bar = tqdm(total=total_steps, initial=done_steps, desc="train", unit="step", disable=not enabled,
                        dynamic_ncols=True)

    def stepped(self, examples: int, seconds: float, epoch: int, losses: dict[str, float]) -> None:
        """One plan step done: ``examples`` trained in ``seconds`` during ``epoch`` (from 0)."""
        self.steps_timed += 1
        self.train_s += seconds
        self.train_examples += examples
        self.done_steps += 1
        self.bar.update(1)
        self.bar.set_postfix({"epoch": f"{epoch + 1}/{self.epochs}", "ex/s": f"{self.train_rate():.1f}",
                              "run left": clock(self.remaining_s()),
                              **{t: f"{v:.3f}" for t, v in sorted(losses.items())}}, refresh=False)

    @contextmanager
    def evaluating(self, split: str, examples: int) -> Iterator[Callable[[int], None]]:
        """A bar over one evaluation pass; yields the callback that advances it by a number of examples."""
        bar = tqdm(total=examples, desc=split, unit="ex", leave=False, disable=not self.enabled, dynamic_ncols=True)
        start, done = time.perf_counter(), 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            bar.update(count)
            bar.set_postfix({"run left": clock(self.remaining_s() + (examples - done) / self.eval_rate())},
                            refresh=False)

        try:
            yield advance
        finally:
            bar.close()
            self.eval_s += time.perf_counter() - start
            self.eval_examples += done
            if split == "validation":
                self.work.passes = max(self.work.passes - 1, 0)
            elif split == "test":
                self.work.test = 0

    def train_rate(self) -> float:
        return self.train_examples / self.train_s if self.train_s else 0.0

    def eval_rate(self) -> float:
        if self.eval_s:
            return self.eval_examples / self.eval_s
        return FORWARD_SPEEDUP * self.train_rate() or 1.0

    def remaining_s(self) -> float:
        steps_left = self.total_steps - self.done_steps
        per_step = self.train_s / self.steps_timed if self.steps_timed else 0.0
        return steps_left * per_step + self.work.examples() / self.eval_rate()

    def close(self) -> None:
        self.bar.close()


def clock(seconds: float) -> str:
    """``1h 04m``, ``12m 30s``, ``45s``: what a person reads at a glance."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
