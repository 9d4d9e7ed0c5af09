"""Dynamic batching: items of concurrent requests are merged into one forward pass.

Requests put their items on an asyncio queue. One worker takes the first waiting item, waits up to
``max_wait_ms`` for more (or until ``max_batch`` are there), and runs the batch in the single model
thread, so the event loop keeps accepting requests meanwhile; whatever arrives during a forward pass
forms the next batch. One model thread means the model is never used by two threads at once, and
index uploads (:meth:`Batcher.call`) run on it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(RuntimeError):
    """More items wait for the model than ``max_queue``: the client should retry later (HTTP 503)."""


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class Batcher(Generic[T, R]):
    """Runs ``run(items) -> results`` (one result per item, same order) over merged batches.

    Args:
        run: the batch function, called in the model thread.
        max_batch: items per call of ``run``.
        max_wait_ms: how long the first item of a batch waits for others to join it.
        max_queue: items allowed to wait; beyond that :meth:`submit` raises :class:`QueueFull`.
    """

    def __init__(self, run: Callable[[list[T]], list[R]], max_batch: int, max_wait_ms: float, max_queue: int) -> None:
        self.run, self.max_batch, self.max_wait, self.max_queue = run, max_batch, max_wait_ms / 1000, max_queue
        self.batches = 0
        self.items = 0
        self._queue: asyncio.Queue[_Pending[T, R]] = asyncio.Queue()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtpeft-model")
        self._worker: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._model_thread.shutdown(wait=True)

    async def submit(self, items: list[T]) -> list[R]:
        """Queue a request's items (all at once, so they stay together) and wait for their results."""
        if self._queue.qsize() + len(items) > self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} items are waiting for the model (limit {self.max_queue}); "
                            "retry later")
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, loop.create_future()) for item in items]
        for p in pending:
            self._queue.put_nowait(p)
        return list(await asyncio.gather(*(p.future for p in pending)))

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run other model work (embedding a search pool) in the model thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, fn, *args)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                if (left := deadline - loop.time()) <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            batch = [p for p in batch if not p.future.done()]  # a cancelled request's items need no work
            if not batch:
                continue
            try:
                results = await self.call(self.run, [p.item for p in batch])
            except Exception as err:  # answer every waiting request, keep serving
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(err)
                continue
            self.batches += 1
            self.items += len(batch)
            for p, result in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)
