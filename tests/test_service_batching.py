"""MicroBatcher without a model: who shares a call, how big calls get, what stays apart, and
that one bad request cannot fail its neighbours."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.batching import BatchSettings, MicroBatcher
from service.errors import Rejected
from service.metrics import Metrics


class Recorder:
    """A fake model: doubles numbers, records each call, refuses negative numbers."""

    def __init__(self, delay: float = 0.01) -> None:
        self.calls: list[tuple[Hashable, list[int]]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, key: Hashable, items: list[int]) -> list[int]:
        with self.lock:
            self.calls.append((key, list(items)))
        time.sleep(self.delay)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {items}")
        return [2 * i for i in items]


def _run(settings: BatchSettings, requests: list[tuple[Hashable, list[int]]],
         model: Recorder, max_queue: int = 1024) -> list[object]:
    async def main() -> list[object]:
        metrics = Metrics()
        metrics.active = len(requests)  # as if each came over HTTP: the oldest waits for them
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher("test", model, executor, settings, metrics,
                                   max_queue=max_queue)
            results = await asyncio.gather(*(batcher.submit(items, key=key)
                                             for key, items in requests),
                                           return_exceptions=True)
            await batcher.close()
            return results

    return asyncio.run(main())


def test_concurrent_requests_share_one_call_and_get_their_own_results() -> None:
    model = Recorder()
    requests = [(None, [i, i + 100]) for i in range(5)]
    assert _run(BatchSettings(max_batch_size=64, max_wait_ms=50), requests, model) == [
        [2 * i, 2 * i + 200] for i in range(5)]
    assert len(model.calls) == 1 and len(model.calls[0][1]) == 10


def test_calls_stay_within_max_batch_size_and_keys_apart() -> None:
    model = Recorder()
    requests = [("a", [1, 2, 3])] * 4 + [("b", [4])] * 3 + [("a", list(range(10)))]
    results = _run(BatchSettings(max_batch_size=6, max_wait_ms=20), requests, model)
    assert results[7] == [2 * i for i in range(10)]  # larger than a call: runs alone
    for key, items in model.calls:
        assert len(items) <= 6 or items == list(range(10))
        assert {k for k, _ in requests if k == key} == {key}
    assert sorted(len(items) for key, items in model.calls if key == "b") == [3]


def test_batching_off_makes_one_call_per_request() -> None:
    model = Recorder()
    results = _run(BatchSettings(enabled=False), [(None, [i]) for i in range(6)], model)
    assert results == [[2 * i] for i in range(6)] and len(model.calls) == 6


def test_a_failing_request_fails_alone() -> None:
    model = Recorder()
    results = _run(BatchSettings(max_wait_ms=50), [(None, [1]), (None, [-1]), (None, [3])],
                   model)
    assert results[0] == [2] and results[2] == [6]
    assert isinstance(results[1], ValueError) and "negative" in str(results[1])


def test_a_lone_request_waits_no_longer_than_max_wait() -> None:
    model = Recorder(delay=0)
    started = time.perf_counter()
    assert _run(BatchSettings(max_wait_ms=30), [(None, [1])], model) == [[2]]
    assert time.perf_counter() - started < 1.0


def test_a_full_queue_gets_429() -> None:
    results = _run(BatchSettings(max_wait_ms=20), [(None, [i]) for i in range(4)], Recorder(),
                   max_queue=2)
    refused = [r for r in results if isinstance(r, Rejected)]
    assert len(refused) == 2 and refused[0].status == 429 and "--max-queue" in refused[0].message


@pytest.mark.parametrize(("size", "wait"), [(0, 2.0), (4, -1.0)])
def test_settings_are_checked(size: int, wait: float) -> None:
    with pytest.raises(ValueError, match="max_"):
        BatchSettings(max_batch_size=size, max_wait_ms=wait)


def test_a_lone_client_pays_no_wait() -> None:
    async def main() -> float:
        with ThreadPoolExecutor(1) as executor:
            metrics = Metrics()
            metrics.active = 1  # this request is all the server is handling
            batcher = MicroBatcher("test", Recorder(delay=0), executor,
                                   BatchSettings(max_wait_ms=2000), metrics)
            started = time.perf_counter()
            assert await batcher.submit([1]) == [2]
            await batcher.close()
            return time.perf_counter() - started

    assert asyncio.run(main()) < 0.5
