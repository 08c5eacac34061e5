"""The batch build job: ad table in, index directory out, resumable after a crash.

Flow: check the output and its checkpoint, scan the table (cheap checks first) → clean up what
a killed build left → load the encoder → for every chunk not yet in the checkpoint, encode it
and write its shard (here, or on a Dask cluster's workers: :mod:`index_build.dask_build`) →
train the FAISS index if its type needs it → add the shards in order → stage the index
directory beside the output and swap it in → remove the checkpoint.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from adrecall.checksums import file_sha256
from adrecall.models import DEFAULT_MODEL, model_label, resolve_model_dir, weights_sha256
from index_build.ad_source import AdSource
from index_build.checkpoint import (
    CheckpointError,
    build_key,
    check_checkpoint,
    checkpoint_dir,
    clean_up_checkpoint_leftovers,
    open_checkpoint,
    remove_checkpoint,
    set_checkpoint_aside,
)
from index_build.chunk_tasks import EncoderSettings
from index_build.encoder_facts import EncoderFacts
from index_build.index_assembly import Batches, build_best_index, evenly_spread
from index_build.index_choice import AUTO, DEFAULT_TARGET_RECALL, candidate_specs
from index_build.shards import (
    ShardInfo,
    ShardStore,
    check_shard_store,
    embed_chunk,
    unfinished_chunks,
)
from retrieval.encoder import Encoder
from retrieval.faiss_index import IVF_TYPES, METRIC
from retrieval.folder_swap import fs_step
from retrieval.index_memory import parse_memory
from retrieval.index_store import (
    ADS_FILE,
    ADS_SCHEMA,
    INDEX_FILE,
    Manifest,
    check_index_out,
    clean_up_leftovers,
    directory_bytes,
    staged_index_dir,
    write_manifest,
)
from retrieval.lexical_index import LANGUAGES, LexicalIndex
from retrieval.whitening import WHITENING_FILE, Whitening, fit_whitening

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class BuildSummary:
    """What a build produced and how fast it ran (``ads_per_second`` counts ads encoded now)."""

    out: str
    count: int
    dimension: int
    index_type: str
    seconds: float
    ads_per_second: float
    bytes_on_disk: int
    truncated: int
    resumed_ads: int
    lexical: str | None = None
    """The lexical index's tokenizer language; ``None`` without one."""
    backend: str = "torch"
    """What ran the model, and for ``auto`` why (:meth:`BackendChoice.describe`)."""
    tuning: dict[str, object] | None = None
    """What choosing and tuning the index measured (the manifest's ``tuning``)."""
    cluster: str | None = None
    """The Dask cluster that encoded the ads (``None``: this process)."""
    retried_chunks: int = 0
    """Chunks encoded more than once because their worker died (cluster builds)."""
    encode_seconds: float = 0.0
    """Time spent encoding chunks; the rest of ``seconds`` is checks and model loading (on a
    cluster: its start) before, and ``merge_seconds`` after."""
    merge_seconds: float = 0.0
    """Time from the last shard to the index in place: whitening, FAISS, ads table, manifest."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def build_index(
    ads: str | Path,
    out: str | Path,
    *,
    model: str | Path | Encoder | None = None,
    index_type: str = "flat",
    batch_size: int = 128,
    chunk_rows: int = 4096,
    id_column: str = "ad_id",
    text_column: str = "text",
    normalize_text: bool = True,
    resume: bool = False,
    progress: bool = True,
    whiten: bool = False,
    whiten_dim: int | None = None,
    whiten_sample: int = 100_000,
    lexical: bool = False,
    lexical_language: str = "auto",
    backend: str = "auto",
    threads: int | None = None,
    max_memory: str | int | None = None,
    target_recall: float | None = None,
    dask: str | None = None,
    workers: int | None = None,
    shard_store: str | None = None,
) -> BuildSummary:
    """Embed every ad of the table ``ads`` and write a searchable index directory at ``out``.

    ``out`` must be new, empty or an index (anything else is refused before any work, as is a
    ``<out>.partial`` that a build did not make). ``out`` always holds a complete index: the
    previous one until the new one is swapped in. A killed build keeps its finished chunks in
    ``<out>.partial``; calling again with ``resume=True`` (and the same settings) encodes only
    the rest, never adding an ad twice. A symlink ``out`` keeps pointing at the folder it names.
    Passing an :class:`Encoder` as ``model`` reuses a loaded model. ``whiten`` fits
    BERT-whitening on up to ``whiten_sample`` ad vectors (keeping ``whiten_dim`` dimensions,
    default all) and stores it in the index, which then applies it to every query.
    ``lexical`` also writes a BM25 index of the ads' texts (:mod:`retrieval.lexical_index`,
    tokenizer ``lexical_language``: auto, en, zh or mixed) for lexical and hybrid search.
    ``backend`` and ``threads`` choose what runs the model (:mod:`adrecall.backends`); the
    manifest records the choice. ``index_type`` ``auto`` picks the type from the number of ads,
    ``max_memory`` (bytes, or ``"2G"``) and ``target_recall`` (default 0.95) by
    :mod:`index_build.index_choice`; with a ``target_recall`` an approximate type's ``nprobe`` /
    ``efSearch`` is tuned on held-out ads until recall@10 against exact search reaches it, and
    the manifest's ``tuning`` records what was measured.
    """
    started = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if whiten_dim is not None and not whiten:
        raise ValueError("whiten_dim is set but whiten is off; pass --whiten with --whiten-dim")
    if lexical_language not in LANGUAGES:
        raise ValueError(f"lexical_language must be one of {LANGUAGES}, got {lexical_language!r}")
    if target_recall is not None and not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    on_cluster = dask is not None or workers is not None
    _check_cluster_options(dask, workers, model)
    budget = parse_memory(max_memory) if max_memory is not None else None
    if index_type == AUTO and target_recall is None:
        target_recall = DEFAULT_TARGET_RECALL
    out = Path(out).resolve() if Path(out).is_symlink() else Path(out)
    model_dir = model.model_dir if hasattr(model, "model_dir") else resolve_model_dir(model)
    check_index_out(out, (model_dir,))
    check_checkpoint(out, resume)
    if shard_store is not None:
        shard_store = check_shard_store(shard_store, out)
    source = AdSource(Path(ads), id_column, text_column)
    count = source.scan()
    candidate_specs(index_type, count, 16)  # the type and count, checked before the model loads
    clean_up_leftovers(out)
    clean_up_checkpoint_leftovers(out)
    with ExitStack() as cluster:
        if on_cluster:
            from index_build.dask_build import cluster_encoder_facts, dask_client

            client = cluster.enter_context(dask_client(dask, workers))
            label = model_label(model)
            settings = EncoderSettings(None if label == DEFAULT_MODEL else label, normalize_text,
                                       backend, threads, weights_sha256(model_dir))
            facts = cluster_encoder_facts(client, settings)
            settings = replace(settings, backend=facts.backend_choice.backend)
        else:
            encoder = model if isinstance(model, Encoder) else Encoder(
                model, normalize_text=normalize_text, backend=backend, threads=threads)
            if encoder.normalize_text != normalize_text:
                raise ValueError("the encoder's normalize_text differs from the build's normalize_text")
            facts = EncoderFacts.of(encoder)
        specs = candidate_specs(index_type, count, whiten_dim or facts.dimension, budget)
        source_sha = file_sha256(source.path)
        state = {
            "source_sha256": source_sha,
            "model_sha256": facts.weights_sha256,
            "normalize_text": normalize_text,
            "chunk_rows": chunk_rows,
            "id_column": id_column,
            "text_column": text_column,
            "max_length": facts.max_length,
            "wobert": facts.wobert,
            "backend": facts.backend_choice.backend,
            **({"shard_store": shard_store} if shard_store is not None else {}),
        }
        fresh = not checkpoint_dir(out).exists()
        checkpoint = open_checkpoint(out, state, resume)
        store = ShardStore.for_build(checkpoint, shard_store, build_key(state, out))
        _open_store(store, shard_store is not None, client if on_cluster else None, out,
                    fresh, resume)
        encoding_started = time.perf_counter()
        if on_cluster:
            from index_build.dask_build import encode_on_cluster

            encoding = encode_on_cluster(client, source, store, settings, count, chunk_rows,
                                         batch_size, progress)
            shards, resumed = encoding.shards, encoding.resumed
        else:
            shards, resumed = _encode_shards(source, encoder, store, count, chunk_rows,
                                             batch_size, progress)
        if sum(info.rows for info in shards) != count:
            raise CheckpointError(
                f"the shards in {store.location} hold {sum(i.rows for i in shards)} ads, but "
                f"{source.path} has {count}; delete {checkpoint} and build again")
        encoded = time.perf_counter()
        lists_on_cluster = on_cluster and any(spec.index_type in IVF_TYPES for spec in specs)
        if not lists_on_cluster:
            cluster.close()  # nothing more for the workers: free their memory for the merge
        whitening = None
        if whiten:
            sample = evenly_spread(_shard_batches(store, shards)(), count, whiten_sample)[0]
            whitening = fit_whitening(sample, whiten_dim)
        lists = None
        if lists_on_cluster:
            from index_build.dask_build import cluster_list_assignment

            lists = cluster_list_assignment(client, store, shards, whitening)
        dimension = whitening.output_dim if whitening is not None else facts.dimension
        index, spec, tuning = build_best_index(specs, dimension,
                                               _shard_batches(store, shards, whitening), count,
                                               target_recall, auto=index_type == AUTO,
                                               lists=lists)
    aside: list[Path | None] = []
    with staged_index_dir(out, after_swap=lambda: aside.append(set_checkpoint_aside(out))) as staging:
        faiss.write_index(index, str(staging / INDEX_FILE))
        fs_step(f"wrote {staging / INDEX_FILE}")
        if whitening is not None:
            whitening.save(staging / WHITENING_FILE)
            fs_step(f"wrote {staging / WHITENING_FILE}")
        _write_ads_table(staging / ADS_FILE, store, shards)
        fs_step(f"wrote {staging / ADS_FILE}")
        lexical_index = None
        if lexical:
            texts = pq.read_table(staging / ADS_FILE, columns=["text"]).column("text").to_pylist()
            lexical_index = LexicalIndex.build(texts, language=lexical_language, progress=progress)
            lexical_index.save(staging)
            fs_step(f"wrote the lexical index in {staging}")
        seconds = time.perf_counter() - started
        write_manifest(
            staging,
            Manifest(
                model=facts.label,
                model_sha256=facts.weights_sha256,
                dimension=index.d,
                model_dimension=facts.dimension,
                metric=METRIC,
                normalize_text=normalize_text,
                wobert=facts.wobert,
                index_type=spec.index_type,
                factory=spec.factory,
                search_params=spec.search_params,
                whitening=(
                    {"dim": whitening.output_dim, "fit_count": len(sample)} if whitening else None
                ),
                count=count,
                built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                build_seconds=round(seconds, 3),
                sources={str(source.path.resolve()): source_sha},
                lexical=lexical_index.recorded if lexical_index is not None else None,
                backend=facts.backend_choice.to_dict(),
                tuning=tuning.to_dict() if tuning is not None else None,
            ),
        )
    if shard_store is not None:
        _remove_shards(store)
    remove_checkpoint(out, aside[0] if aside else None)
    seconds = time.perf_counter() - started
    return BuildSummary(
        out=str(out),
        count=count,
        dimension=index.d,
        index_type=spec.index_type,
        seconds=round(seconds, 3),
        ads_per_second=round((count - resumed) / seconds, 1) if seconds > 0 else 0.0,
        bytes_on_disk=directory_bytes(out),
        truncated=sum(s.truncated for s in shards),
        resumed_ads=resumed,
        lexical=lexical_index.language if lexical_index is not None else None,
        backend=facts.backend_choice.describe(),
        tuning=tuning.to_dict() if tuning is not None else None,
        cluster=encoding.where if on_cluster else None,
        retried_chunks=encoding.retried if on_cluster else 0,
        encode_seconds=round(encoded - encoding_started, 3),
        merge_seconds=round(time.perf_counter() - encoded, 3),
    )


def _encode_shards(
    source: AdSource,
    encoder: Encoder,
    store: ShardStore,
    count: int,
    chunk_rows: int,
    batch_size: int,
    progress: bool,
) -> tuple[list[ShardInfo], int]:
    """Encode every chunk that has no finished shard yet; return all shards and the skipped ads."""
    encoded: list[ShardInfo] = []
    finished: list[ShardInfo] = []
    with tqdm(total=count, unit="ad", desc="encoding ads", disable=not progress) as bar:
        for chunk in unfinished_chunks(source.chunks(chunk_rows), store, finished, bar):
            vectors, truncated = embed_chunk(chunk, encoder, batch_size)
            encoded.append(store.write(chunk, vectors, truncated))
            bar.update(len(chunk))
    shards = sorted(encoded + finished, key=lambda info: info.number)
    return shards, sum(info.rows for info in finished)


def _open_store(store: ShardStore, users: bool, client: Client | None, out: Path, fresh: bool,
                resume: bool) -> None:
    """Make the build's folder in a user's shard store (a build that does not resume starts
    it empty) and, on a cluster, check that every worker shares the store. A first run that
    fails here leaves nothing behind; an error is a ``ValueError`` naming the store."""
    try:
        if users:
            store.prepare(fresh=not resume)
        if client is not None:
            from index_build.dask_build import check_store_reachable

            check_store_reachable(client, store)
    except Exception as exc:
        if fresh:
            with contextlib.suppress(Exception):
                if users:
                    store.remove()
                remove_checkpoint(out)
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"the shard store {store.location} cannot be used: "
                         f"{type(exc).__name__}: {exc}") from exc


def _remove_shards(store: ShardStore) -> None:
    """Delete the build's folder in the user's shard store; the index is in place already, so
    a failure is a warning, not an error."""
    try:
        store.remove()
    except OSError as exc:
        warnings.warn(f"the index is built, but its shards in {store.location} could not be "
                      f"deleted ({exc}); delete that folder by hand", stacklevel=3)


def _shard_batches(store: ShardStore, shards: list[ShardInfo],
                   whitening: Whitening | None = None) -> Batches:
    """Passes over the shards' vectors (whitened when the index is) and their faiss ids."""
    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for info in shards:
            vectors = np.ascontiguousarray(store.vectors(info.number), dtype=np.float32)
            ids = store.rows(info.number).column("faiss_id").to_numpy()
            yield (whitening.apply(vectors) if whitening is not None else vectors), ids

    return batches


def _write_ads_table(path: Path, store: ShardStore, shards: list[ShardInfo]) -> None:
    """The index's ads table: every shard's rows, in chunk order."""
    with pq.ParquetWriter(path, ADS_SCHEMA) as writer:
        for info in shards:
            writer.write_table(store.rows(info.number))


def _check_cluster_options(dask: str | None, workers: int | None,
                           model: str | Path | Encoder | None) -> None:
    """Refuse cluster options that cannot work together, before any work."""
    if dask is not None and workers is not None:
        raise ValueError(f"give either dask (a scheduler address, got {dask!r}) or workers (a new "
                         f"local cluster, got {workers}), not both")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if (dask is not None or workers is not None) and isinstance(model, Encoder):
        raise ValueError("a cluster build loads the model on every worker: pass the model's "
                         "directory (or None for the default), not a loaded Encoder")
