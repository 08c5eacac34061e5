"""Encode a build's chunks on a Dask cluster; the client keeps the merge.

The client streams the ad table in chunks and submits each unfinished one as a task
(:func:`index_build.chunk_tasks.encode_chunk_into`): the chunk's rows travel inside the task,
so a chunk whose worker dies is simply run again on another, and at most a few chunks per
worker thread are in flight, so the client's memory stays bounded however large the table.
Workers write shards into the shard store; the build then merges them exactly as a local one,
except that the IVF list of every vector (the costly part of filling an IVF index) is found
on the workers too, once this machine has trained the index (:mod:`index_build.coarse_lists`).

``distributed`` is imported only here, inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from index_build.ad_source import AdSource
from index_build.chunk_tasks import (
    EncoderSettings,
    answer_probe,
    describe_encoder,
    encode_chunk_into,
    shard_lists,
)
from index_build.coarse_lists import ListAssignment, assigner_bytes
from index_build.encoder_facts import EncoderFacts
from index_build.shards import ShardInfo, ShardStore, unfinished_chunks

if TYPE_CHECKING:
    import faiss
    from distributed import Client, Future

    from retrieval.whitening import Whitening

CONNECT_TIMEOUT_S = 20
"""How long to keep trying a scheduler address before giving up."""
WORKERS_TIMEOUT_S = 60
"""How long to wait for a scheduler's first worker."""
CHUNKS_PER_THREAD = 2
"""Chunks queued per worker thread: one running, one ready, so no worker waits on the client."""


class ClusterError(ValueError):
    """The cluster cannot be reached, or a chunk failed on it; the message says what to do
    (a ``ValueError``, so the command line ends in that one line, not a traceback)."""


@dataclass(frozen=True)
class ClusterEncoding:
    """What encoding on the cluster did: every shard in chunk order, the ads a previous run had
    finished, the chunks run more than once (their worker died), and where it ran."""

    shards: list[ShardInfo]
    resumed: int
    retried: int
    where: str


@contextmanager
def dask_client(address: str | None, workers: int | None) -> Iterator[Client]:
    """A client of the cluster at ``address``, or of a new local cluster of ``workers``
    processes with one thread each, bound to 127.0.0.1 and shut down on exit. It is never
    made the process's default Dask client."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ClusterError(
            "building on a Dask cluster needs the distributed package: "
            "pip install 'adrecall[dask]'"
        ) from exc
    if address is not None:
        try:
            client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach a Dask scheduler at {address!r} ({exc}); start one "
                "(dask scheduler / dask worker) or use --workers N for a local cluster"
            ) from exc
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def cluster_encoder_facts(client: Client, settings: EncoderSettings) -> EncoderFacts:
    """Load the model on every worker at once (each keeps it for its chunks; a worker that
    joins later loads it at its first chunk) and return their facts, which must agree."""
    _require_workers(client)
    futures = [client.submit(describe_encoder, settings, workers=[address],
                             allow_other_workers=True, pure=False)
               for address in client.nthreads()]
    try:
        facts = client.gather(futures)
    except Exception as exc:
        raise ClusterError(f"a worker could not load the model: {type(exc).__name__}: {exc}") \
            from exc
    shapes = {(f.weights_sha256, f.dimension, f.max_length, f.wobert) for f in facts}
    if len(shapes) > 1:
        raise ClusterError(f"the workers' copies of the model differ (weights, dimension, maximum "
                           f"length, WoBERT): {sorted(shapes)}; give every worker the same files")
    backends = sorted({f.backend_choice.backend for f in facts})
    if len(backends) > 1:
        raise ClusterError(f"the workers chose different back-ends ({', '.join(backends)}) for "
                           f"--backend {settings.backend}; name one they all have, e.g. "
                           f"--backend {backends[0]}")
    return facts[0]


def check_store_reachable(client: Client, store: ShardStore) -> None:
    """Before any chunk: every worker reads a file this machine wrote in the store, and this
    machine reads each worker's answer, so a store that is not shared fails now, not after
    hours of encoding."""
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    workers = list(client.nthreads())
    try:
        store.put(probe, b"adrecall")
        futures = [client.submit(answer_probe, store, probe, number, workers=[address],
                                 allow_other_workers=True, pure=False)
                   for number, address in enumerate(workers)]
        client.gather(futures)
        for number in range(len(workers)):
            store.get(f"{probe}-{number}")
            store.delete(f"{probe}-{number}")
    except Exception as exc:
        raise ClusterError(
            f"the shard store {store.location} is not shared by this machine and every worker "
            f"({type(exc).__name__}: {exc}); give --shard-store a folder or URL they all reach"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            store.delete(probe)


def encode_on_cluster(
    client: Client,
    source: AdSource,
    store: ShardStore,
    settings: EncoderSettings,
    count: int,
    chunk_rows: int,
    batch_size: int,
    progress: bool,
) -> ClusterEncoding:
    """Encode every chunk of ``source`` that has no finished shard in ``store`` yet."""
    threads = _require_workers(client)
    unfinished = {n for n in store.attempts() if store.info(n) is None}
    store.forget_attempts(unfinished)  # a killed run's attempts are not this run's retries
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    encoded: list[ShardInfo] = []
    finished: list[ShardInfo] = []
    dispatched: set[int] = set()
    in_flight = as_completed(loop=client.loop)
    with tqdm(total=count, unit="ad", desc=f"encoding ads on {threads} Dask threads",
              disable=not progress) as bar:
        if progress and "dashboard" in client.scheduler_info().get("services", {}):
            bar.write(f"Dask dashboard: {client.dashboard_link}" + (
                "" if importlib.util.find_spec("bokeh") else " (pip install bokeh to see it)"),
                file=sys.stderr)
        try:
            for chunk in unfinished_chunks(source.chunks(chunk_rows), store, finished, bar):
                dispatched.add(chunk.number)
                in_flight.add(client.submit(
                    encode_chunk_into, store, chunk, settings, batch_size,
                    key=f"adrecall-chunk-{chunk.number:06d}-{run}", pure=False))
                while in_flight.count() >= CHUNKS_PER_THREAD * threads:
                    _collect(next(in_flight), encoded, bar)
            for future in in_flight:
                _collect(future, encoded, bar)
        except BaseException:
            client.cancel(list(in_flight.futures))
            raise
    attempts = store.attempts()
    retried = sum(1 for n in dispatched if len(attempts.get(n, ())) > 1)
    shards = sorted(encoded + finished, key=lambda info: info.number)
    return ClusterEncoding(shards, sum(info.rows for info in finished), retried,
                           _describe(client, threads))


def cluster_list_assignment(client: Client, store: ShardStore, shards: list[ShardInfo],
                            whitening: Whitening | None) -> ListAssignment:
    """IVF lists computed by the workers, one task per shard, from the trained quantizer that
    this machine writes into the store (and deletes when every list is back)."""
    def lists(index: faiss.Index) -> Generator[np.ndarray, None, None]:
        run = uuid.uuid4().hex[:8]
        name = f"coarse-assigner-{run}.npz"
        store.put(name, assigner_bytes(index, whitening))
        futures = [client.submit(shard_lists, store, name, info.number, pure=False,
                                 key=f"adrecall-lists-{info.number:06d}-{run}")
                   for info in shards]
        try:
            for future in futures:
                yield _result(future)
        finally:
            client.cancel(futures)
            store.delete(name)

    return lists


def _result(future: Future) -> Any:
    """A task's result, or a :class:`ClusterError` naming its chunk."""
    try:
        return future.result()
    except Exception as exc:
        number = int(future.key.split("-")[2])
        raise ClusterError(
            f"chunk {number} failed on the cluster: {type(exc).__name__}: {exc}; the finished "
            "shards are kept, so fix the cause and run the build again with --resume"
        ) from exc


def _collect(future: Future, encoded: list[ShardInfo], bar: tqdm) -> None:
    """Take a finished chunk's shard, or stop the build naming the chunk."""
    info = _result(future)
    encoded.append(info)
    bar.update(info.rows)


def _require_workers(client: Client) -> int:
    """Total worker threads, waiting for a first worker to join."""
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError as exc:
        raise ClusterError(
            f"the Dask scheduler at {client.scheduler.address} has no workers after "
            f"{WORKERS_TIMEOUT_S} s; start some with `dask worker ADDRESS`"
        ) from exc
    return sum(client.nthreads().values())


def _describe(client: Client, threads: int) -> str:
    """Where the chunks ran, for the summary: ``dask ADDRESS, 2 workers, 2 threads``."""
    workers = len(client.nthreads())
    return (f"dask {client.scheduler.address}, {workers} worker{'s' * (workers != 1)}, "
            f"{threads} thread{'s' * (threads != 1)}")
