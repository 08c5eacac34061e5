"""What a cluster worker runs for a build: load the model once per process, then encode whole
chunks into the shard store with the same functions a local build uses; for an IVF index,
find the lists of its shards' vectors (:mod:`index_build.coarse_lists`).

A worker of several threads runs that many tasks at once; their model calls (and FAISS
searches) take turns, each with all the worker's threads (or ``--threads``), so the cores are
neither idle nor oversubscribed whatever the engine (OpenVINO's latency mode runs one request
at a time anyway), while reading and writing shards overlaps.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace

import numpy as np

from index_build.ad_source import AdChunk
from index_build.coarse_lists import CoarseAssigner
from index_build.encoder_facts import EncoderFacts
from index_build.shards import ShardInfo, ShardStore, embed_chunk
from retrieval.encoder import Encoder


@dataclass(frozen=True)
class EncoderSettings:
    """How every worker loads the model. ``model`` is as the user gave it (``None`` for the
    embedded default, which each worker finds in its own installation, or a directory every
    worker can read); ``weights_sha256`` is what the client hashed, so a worker holding other
    weights under that name refuses to encode."""

    model: str | None
    normalize_text: bool
    backend: str
    threads: int | None
    weights_sha256: str


_loading = threading.Lock()
_computing = threading.Lock()
_loaded: tuple[EncoderSettings, Encoder] | None = None
_assigner: tuple[str, CoarseAssigner] | None = None


def worker_encoder(settings: EncoderSettings) -> Encoder:
    """This process's encoder for ``settings``, loaded on first use (by one task at a time)
    and kept for later chunks; one loaded with ``auto`` serves chunks that name the back-end
    it chose."""
    global _loaded
    with _loading:
        if _loaded is not None:
            loaded_settings, encoder = _loaded
            if settings in (loaded_settings, replace(loaded_settings, backend=encoder.backend)):
                return encoder
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no threads beyond ours
        encoder = Encoder(settings.model, normalize_text=settings.normalize_text,
                          backend=settings.backend, threads=settings.threads or _worker_threads())
        if encoder.weights_sha256 != settings.weights_sha256:
            raise ValueError(
                f"the model {settings.model or 'default'} on this worker has weights "
                f"{encoder.weights_sha256[:12]}…, but the build's client hashed "
                f"{settings.weights_sha256[:12]}…; give every worker the same model files"
            )
        _loaded = (settings, encoder)
        return encoder


def describe_encoder(settings: EncoderSettings) -> EncoderFacts:
    """Load the model on this worker and report what the index must record about it."""
    return EncoderFacts.of(worker_encoder(settings))


def encode_chunk_into(store: ShardStore, chunk: AdChunk, settings: EncoderSettings,
                      batch_size: int) -> ShardInfo:
    """Encode ``chunk`` and write its shard into ``store``. A chunk whose shard is already
    complete (its first attempt's worker died after writing it) is not redone."""
    done = store.info(chunk.number)
    if done is not None:
        return done
    store.mark_attempt(chunk.number)
    encoder = worker_encoder(settings)
    with _computing:
        vectors, truncated = embed_chunk(chunk, encoder, batch_size)
    return store.write(chunk, vectors, truncated)


def answer_probe(store: ShardStore, probe: str, worker: int) -> None:
    """Read the client's file ``probe`` in the store and write ``probe-WORKER`` beside it, so
    the client knows this worker and it see the same store both ways."""
    store.put(f"{probe}-{worker}", store.get(probe))


def shard_lists(store: ShardStore, assigner: str, number: int) -> np.ndarray:
    """The IVF list of every vector of shard ``number``, by the quantizer (and whitening) in
    the store's file ``assigner``, read once per process."""
    global _assigner
    key = f"{store.location}/{assigner}"
    with _loading:
        if _assigner is None or _assigner[0] != key:
            import faiss

            faiss.omp_set_num_threads(_worker_threads() or faiss.omp_get_max_threads())
            _assigner = (key, CoarseAssigner.from_bytes(store.get(assigner)))
        assigner_now = _assigner[1]
    vectors = np.asarray(store.vectors(number))
    with _computing:
        return assigner_now.lists(vectors)


def _worker_threads() -> int | None:
    """The thread count Dask gave this worker (``None`` outside a worker)."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError):
        return None
