"""Dynamic batching without a model: merging, limits, order and errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mtpeft.serve.batcher import Batcher, QueueFull


def run_with(batcher: Batcher, scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``scenario()`` in a fresh event loop with ``batcher`` started."""
    async def main() -> Any:
        batcher.start()
        try:
            return await scenario()
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_concurrent_requests_merge_into_one_batch_and_keep_their_order():
    seen: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        seen.append(list(items))
        return [i * 10 for i in items]

    batcher = Batcher(run, max_batch=32, max_wait_ms=50, max_queue=100)
    requests = [[r * 3, r * 3 + 1, r * 3 + 2] for r in range(8)]
    results = run_with(batcher, lambda: asyncio.gather(*(batcher.submit(r) for r in requests)))
    assert results == [[i * 10 for i in r] for r in requests]
    assert len(seen) == 1 and batcher.batches == 1 and batcher.items == 24


def test_batches_never_exceed_max_batch_and_the_first_item_waits_at_most_max_wait():
    sizes: list[int] = []
    batcher = Batcher(lambda items: sizes.append(len(items)) or items, max_batch=4, max_wait_ms=200, max_queue=100)

    async def scenario() -> float:
        await asyncio.gather(*(batcher.submit([i, i]) for i in range(5)))
        start = time.monotonic()
        await batcher.submit([99])  # alone: leaves after max_wait, not later
        return time.monotonic() - start

    waited = run_with(batcher, scenario)
    assert max(sizes) <= 4 and sum(sizes) == 11
    assert 0.2 <= waited < 0.5  # it waited for company, then left without it (0.3 s of slack for a busy CI)


def test_an_error_in_the_batch_reaches_every_request_and_the_worker_survives():
    def run(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad batch")
        return items

    batcher = Batcher(run, max_batch=8, max_wait_ms=1, max_queue=100)

    async def scenario() -> list[int]:
        with pytest.raises(ValueError, match="bad batch"):
            await batcher.submit([-1])
        return await batcher.submit([5])

    assert run_with(batcher, scenario) == [5]


def test_a_full_queue_refuses_new_items():
    batcher = Batcher(lambda items: items, max_batch=2, max_wait_ms=1, max_queue=3)

    async def scenario() -> None:
        with pytest.raises(QueueFull, match="limit 3"):
            await batcher.submit([1, 2, 3, 4])

    run_with(batcher, scenario)
