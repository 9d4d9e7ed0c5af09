"""Dynamic batching without a model: merging, fairness between requests, limits, order and errors."""

from __future__ import annotations

import asyncio
import threading
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


def held_first_call(record: list[list], fn: Callable[[list], list] = lambda items: items,
                    ) -> tuple[Callable[[list], list], threading.Event, threading.Event]:
    """A batch (or prepare) function that records its calls and holds the first one until released."""
    started, release = threading.Event(), threading.Event()

    def call(items: list) -> list:
        record.append(list(items))
        started.set()
        assert release.wait(10)
        return fn(items)

    return call, started, release


def test_a_small_request_waits_for_the_batch_in_flight_not_for_a_large_request():
    batches: list[list] = []
    run, started, release = held_first_call(batches)
    batcher = Batcher(run, max_batch=4, max_wait_ms=1, max_queue=100)
    large, small = [f"L{i}" for i in range(20)], ["S0", "S1"]

    async def scenario() -> tuple[list, list]:
        big = asyncio.create_task(batcher.submit(large))
        await asyncio.to_thread(started.wait, 10)  # the first batch holds the model
        little = asyncio.create_task(batcher.submit(small))
        await asyncio.sleep(0.05)
        release.set()
        return await big, await little

    assert run_with(batcher, scenario) == (large, small)  # each request's results, in its order
    assert batches[0] == large[:4]
    # the small request's items take turns with the large one's in the very next batch
    assert batches[1] == ["L4", "S0", "L5", "S1"]
    assert [item for batch in batches for item in batch if item.startswith("L")] == large


def test_tokenising_takes_turns_in_rounds_bounded_by_cost():
    rounds: list[list] = []
    prepare, started, release = held_first_call(rounds, lambda items: [item.lower() for item in items])
    batches: list[list] = []
    batcher = Batcher(lambda items: batches.append(items) or items, max_batch=8, max_wait_ms=1, max_queue=100,
                      prepare=prepare, cost=len, max_round_cost=10)
    large = [f"L{i}".ljust(10, "x") for i in range(6)]  # each item is a whole round's budget
    small = ["S0", "S1"]

    async def scenario() -> tuple[list, list]:
        big = asyncio.create_task(batcher.submit(large))
        await asyncio.to_thread(started.wait, 10)  # the first round is being tokenised
        little = asyncio.create_task(batcher.submit(small))
        await asyncio.sleep(0.05)
        assert batcher.queued == len(large) + len(small)
        release.set()
        return await big, await little

    big, little = run_with(batcher, scenario)
    assert big == [item.lower() for item in large] and little == ["s0", "s1"]  # prepared, then run, in order
    assert all(sum(map(len, r)) <= 10 or len(r) == 1 for r in rounds) and max(map(len, rounds)) <= 8
    # after the round in flight, one large item per small one: the small request is not held behind all six
    order = [item for r in rounds for item in r]
    assert order.index("S1") <= 4 and order[:5] == [large[0], large[1], "S0", large[2], "S1"]
    assert batcher.queued == 0


def test_a_failed_preparation_reaches_its_request_and_the_worker_survives():
    def prepare(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("cannot tokenise")
        return items

    batcher = Batcher(lambda items: items, max_batch=8, max_wait_ms=1, max_queue=100, prepare=prepare)

    async def scenario() -> list[int]:
        with pytest.raises(ValueError, match="cannot tokenise"):
            await batcher.submit([-1])
        return await batcher.submit([5, 6])

    assert run_with(batcher, scenario) == [5, 6]
