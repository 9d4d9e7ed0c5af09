"""Helpers of the training tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mtpeft.train import loop
from mtpeft.train.checkpoint import LoopState


@contextmanager
def crash_after_step(step: int) -> Iterator[None]:
    """Inside the block, training stops abruptly (no checkpoint, as a kill would) after optimiser step ``step``."""
    def crash(state: LoopState) -> None:
        if state.optimizer_steps >= step:
            raise KeyboardInterrupt(f"simulated crash after step {state.optimizer_steps}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "on_optimizer_step", crash)
        yield
