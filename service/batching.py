"""Micro-batching: concurrent requests share one model call.

Each request submits a list of items (texts, queries, pairs) under a key (requests that can
share a call have the same key: ``(k, mode)`` for search). A worker takes the oldest waiting
request and every other waiting request of its key, up to ``max_batch_size`` items, runs them
in one call on the model thread, and hands each request its slice of the results. The oldest
request waits at most ``max_wait_ms`` for company, and only while the server is handling
other requests that could join it (a lone client pays no wait); a request that queued while
the model was busy has already waited and goes with the next call at once. A request larger than
``max_batch_size`` runs alone. With batching off, every request is its own call (still one
call at a time on the model thread, as with batching on), which is the benchmark's baseline.

One failing request cannot fail the others: when a shared call raises, each request of it is
run on its own, and only the one at fault gets the error.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from service.errors import Rejected
from service.metrics import Metrics

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class BatchSettings:
    """``max_batch_size`` items per model call, ``max_wait_ms`` the oldest request waits for
    others; ``enabled=False`` runs every request as its own call."""

    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_batch_size, bool) or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if not 0 <= self.max_wait_ms <= 10_000:
            raise ValueError(f"max_wait_ms must be between 0 and 10000, got {self.max_wait_ms}")


@dataclass
class _Request(Generic[T]):
    key: Hashable
    items: list[T]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher(Generic[T, R]):
    """Batches the calls of ``run(key, items) -> results`` (one result per item, in order) on
    ``executor``; :meth:`submit` from request handlers, :meth:`close` at shutdown."""

    def __init__(self, name: str, run: Callable[[Hashable, list[T]], Sequence[R]],
                 executor: Executor, settings: BatchSettings, metrics: Metrics, *,
                 max_queue: int = 1024) -> None:
        self.name, self._run, self._executor = name, run, executor
        self.settings, self._metrics, self._max_queue = settings, metrics, max_queue
        self._pending: deque[_Request[T]] = deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._waiting = 0  # requests submitted and not yet answered

    async def submit(self, items: list[T], key: Hashable = None) -> list[R]:
        """The results for ``items``, from a model call they may share with other requests.
        Raises :class:`Rejected` (429) when ``max_queue`` requests are already waiting."""
        if self._waiting >= self._max_queue:
            raise Rejected(429, f"the server has {self._waiting} {self.name} requests waiting "
                           "(its --max-queue); retry in a moment", headers={"Retry-After": "1"})
        self._waiting += 1
        self._metrics.queue_depth.labels(self.name).set(self._waiting)
        try:
            if not self.settings.enabled:
                return await self._call(key, items, 1)
            return await self._enqueue(key, items)
        finally:
            self._waiting -= 1
            self._metrics.queue_depth.labels(self.name).set(self._waiting)

    async def close(self) -> None:
        """Stop the worker once the requests it holds are answered (uvicorn's shutdown lets
        the requests in flight finish before it calls this)."""
        while self._pending and self._worker is not None and not self._worker.done():
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    async def _enqueue(self, key: Hashable, items: list[T]) -> list[R]:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._work(), name=f"batcher-{self.name}")
        request = _Request(key, items, loop.create_future())
        self._pending.append(request)
        assert self._wake is not None
        self._wake.set()
        return await request.future

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            first = self._pending[0]
            deadline = first.arrived + self.settings.max_wait_ms / 1000
            while (self._items_for(first.key) < self.settings.max_batch_size
                   and self._metrics.active > len(self._pending)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except asyncio.TimeoutError:  # on Python 3.10 not the builtin TimeoutError
                    break
            await self._run_batch(self._take(first.key))

    def _items_for(self, key: Hashable) -> int:
        return sum(len(r.items) for r in self._pending if r.key == key)

    def _take(self, key: Hashable) -> list[_Request[T]]:
        """The oldest requests of ``key`` that fit in one call (at least one), in order."""
        batch: list[_Request[T]] = []
        size = 0
        for request in list(self._pending):
            if request.key != key:
                continue
            if batch and size + len(request.items) > self.settings.max_batch_size:
                break
            batch.append(request)
            size += len(request.items)
            self._pending.remove(request)
        return batch

    async def _run_batch(self, batch: list[_Request[T]]) -> None:
        live = [r for r in batch if not r.future.done()]  # a client may have gone away
        if not live:
            return
        flat = [item for r in live for item in r.items]
        try:
            results = await self._call(live[0].key, flat, len(live))
        except Exception as exc:  # noqa: BLE001 - handed to the requests, never lost
            if len(live) == 1:
                _settle(live[0].future, exc=exc)
                return
            for request in live:  # find the request at fault; the others still get answers
                try:
                    _settle(request.future, await self._call(request.key, request.items, 1))
                except Exception as single:  # noqa: BLE001
                    _settle(request.future, exc=single)
            return
        start = 0
        for request in live:
            _settle(request.future, results[start:start + len(request.items)])
            start += len(request.items)

    async def _call(self, key: Hashable, items: list[T], requests: int) -> list[R]:
        """One model call on the model thread, recorded in the metrics."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        results = list(await loop.run_in_executor(self._executor, self._run, key, items))
        self._metrics.observe_batch(self.name, len(items), requests,
                                    time.perf_counter() - started)
        if len(results) != len(items):
            raise RuntimeError(f"{self.name} returned {len(results)} results for {len(items)} "
                               "items")
        return results


def _settle(future: asyncio.Future, result: Any = None, *, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
