"""Fair dynamic batching: items of concurrent requests are merged into one forward pass, taking turns.

Each request's items wait in a lane of their own, and every stage serves the lanes round-robin (one item
of each waiting request in turn), so a request of many items cannot hold a small one behind it for more
than the work already in flight:

1. prepare (optional; tokenising): one thread takes items in turn until a round holds ``max_batch`` items or
   ``max_round_cost`` of their cost (at least one item), so one round of huge texts is one text, not twenty;
2. run (the model): one worker takes the first ready item, waits up to ``max_wait_ms`` for more (or until
   ``max_batch`` are ready), takes a batch in turn across requests and runs it in the single model thread,
   so the event loop keeps accepting requests meanwhile.

One model thread means the model is never used by two threads at once; other model work
(:meth:`Batcher.call`, index uploads) runs on it too, between batches.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(RuntimeError):
    """More items wait for the model than ``max_queue``: the client should retry later (HTTP 503)."""


@dataclass
class _Pending:
    request: int  # which request the item belongs to: its lane in every stage
    item: Any  # as submitted, then as prepared
    future: asyncio.Future[Any]


class _Turns:
    """The items waiting for one stage, a lane per request, served round-robin: a lane that gave an item goes
    to the back of the ring (the lanes dict keeps ring order)."""

    def __init__(self) -> None:
        self._lanes: dict[int, deque[_Pending]] = {}
        self.size = 0
        self.arrived = asyncio.Event()  # set whenever an item is added

    def add(self, pending: _Pending) -> None:
        self._lanes.setdefault(pending.request, deque()).append(pending)  # a new lane joins at the back
        self.size += 1
        self.arrived.set()

    def take(self, limit: int, budget: float = math.inf, cost: Callable[[Any], float] = lambda _: 1) -> list[_Pending]:
        """Up to ``limit`` items, one per lane in turn, while their cost stays within ``budget`` (at least one)."""
        taken: list[_Pending] = []
        spent = 0.0
        while self._lanes and len(taken) < limit:
            request, lane = next(iter(self._lanes.items()))
            price = cost(lane[0].item)
            if taken and spent + price > budget:
                break
            del self._lanes[request]
            taken.append(lane.popleft())
            spent += price
            if lane:
                self._lanes[request] = lane
        self.size -= len(taken)
        return taken

    async def wait(self) -> None:
        """Until some item waits."""
        while not self.size:
            self.arrived.clear()
            await self.arrived.wait()


class Batcher(Generic[T, R]):
    """Runs ``run(items) -> results`` (one result per item, same order) over merged, fairly shared batches.

    Args:
        run: the batch function, called in the model thread (with prepared items when ``prepare`` is given).
        max_batch: items per call of ``run`` (and at most per call of ``prepare``).
        max_wait_ms: how long the first ready item of a batch waits for others to join it.
        max_queue: items allowed to wait; beyond that :meth:`submit` raises :class:`QueueFull`.
        prepare: ``prepare(items) -> prepared`` (one per item, same order), called in a thread of its own, so
            tokenising never holds the model thread; without it, items go to ``run`` as submitted.
        cost: what preparing an item costs (e.g. its characters), counted against ``max_round_cost``.
        max_round_cost: the cost of the items one call of ``prepare`` gets (it always gets at least one).
    """

    def __init__(self, run: Callable[[list[Any]], list[R]], max_batch: int, max_wait_ms: float, max_queue: int,
                 prepare: Callable[[list[T]], list[Any]] | None = None,
                 cost: Callable[[T], float] = lambda _: 1, max_round_cost: float = math.inf) -> None:
        self.run, self.max_batch, self.max_wait, self.max_queue = run, max_batch, max_wait_ms / 1000, max_queue
        self.prepare, self.cost, self.max_round_cost = prepare, cost, max_round_cost
        self.batches = 0
        self.items = 0
        self._requests = count()
        self._unprepared: _Turns | None = None
        self._preparing = 0
        self._ready: _Turns | None = None
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtpeft-model")
        self._prepare_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtpeft-prepare")
        self._workers: list[asyncio.Task[None]] = []

    @property
    def queued(self) -> int:
        """Items waiting for a batch (being prepared included)."""
        stages = (self._unprepared, self._ready)
        return self._preparing + sum(stage.size for stage in stages if stage is not None)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._unprepared, self._ready = _Turns(), _Turns()  # their events belong to this loop
        self._workers = [loop.create_task(self._run_batches(self._ready))]
        if self.prepare is not None:
            self._workers.append(loop.create_task(self._prepare_rounds(self.prepare, self._unprepared, self._ready)))

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._model_thread.shutdown(wait=True)
        self._prepare_thread.shutdown(wait=True)

    async def submit(self, items: list[T]) -> list[R]:
        """Queue a request's items in a lane of their own and wait for their results, in order."""
        if self._unprepared is None or self._ready is None:
            raise RuntimeError("Batcher.submit before Batcher.start")
        if self.queued + len(items) > self.max_queue:
            raise QueueFull(f"{self.queued} items are waiting for the model (limit {self.max_queue}); retry later")
        loop = asyncio.get_running_loop()
        request = next(self._requests)
        pending = [_Pending(request, item, loop.create_future()) for item in items]
        stage = self._unprepared if self.prepare is not None else self._ready
        for p in pending:
            stage.add(p)
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except BaseException:  # failed or cancelled: the request's other items need no work
            for p in pending:
                p.future.cancel()
            raise

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run other model work (embedding a search pool) in the model thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, fn, *args)

    async def _prepare_rounds(self, prepare: Callable[[list[T]], list[Any]], unprepared: _Turns,
                              ready: _Turns) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await unprepared.wait()
            todo = _live(unprepared.take(self.max_batch, self.max_round_cost, self.cost))
            if not todo:
                continue
            self._preparing = len(todo)
            try:
                prepared = await loop.run_in_executor(self._prepare_thread, prepare, [p.item for p in todo])
            except Exception as err:  # answer every waiting request, keep serving
                _fail(todo, err)
                continue
            finally:
                self._preparing = 0
            for p, item in zip(todo, prepared, strict=True):
                p.item = item
                ready.add(p)

    async def _run_batches(self, ready: _Turns) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await ready.wait()
            deadline = loop.time() + self.max_wait
            while ready.size < self.max_batch and (left := deadline - loop.time()) > 0:
                ready.arrived.clear()
                try:
                    await asyncio.wait_for(ready.arrived.wait(), left)
                except TimeoutError:
                    break
            batch = _live(ready.take(self.max_batch))
            if not batch:
                continue
            try:
                results = await self.call(self.run, [p.item for p in batch])
            except Exception as err:  # answer every waiting request, keep serving
                _fail(batch, err)
                continue
            self.batches += 1
            self.items += len(batch)
            for p, result in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)


def _live(taken: list[_Pending]) -> list[_Pending]:
    """The items whose request still waits (a cancelled or failed request's need no work)."""
    return [p for p in taken if not p.future.done()]


def _fail(pending: list[_Pending], err: Exception) -> None:
    for p in pending:
        if not p.future.done():
            p.future.set_exception(err)
