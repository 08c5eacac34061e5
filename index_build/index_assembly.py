"""Fill a FAISS index from batches of vectors, and choose among candidate types by recall.

The build (vectors from its checkpoint shards) and compaction (vectors read back from the old
index) both hand over a callable that yields ``(vectors, faiss_ids)`` batches, so neither
needs every vector in memory at once: training takes an evenly spread sample, and each batch is
added as it is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace

import faiss
import numpy as np

from index_build.coarse_lists import ListAssignment, add_with_lists
from index_build.index_tuning import (
    RECALL_K,
    TuningResult,
    exact_neighbours,
    tune,
    tuning_query_count,
)
from retrieval.faiss_index import IndexSpec, create_index, train_index, training_size
from retrieval.index_memory import estimate_index_bytes

Batches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
"""Each call starts a new pass over all vectors, as ``(float32 vectors, int64 ids)`` batches."""


def evenly_spread(batches: Iterable[tuple[np.ndarray, np.ndarray]], total: int,
                  wanted: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``wanted`` vectors (and their ids) taken at a fixed stride over all ``total``."""
    step = max(1, total // max(1, wanted))
    vectors, ids, offset = [], [], 0
    for batch, batch_ids in batches:
        start = (-offset) % step
        vectors.append(np.asarray(batch[start::step], dtype=np.float32))
        ids.append(np.asarray(batch_ids[start::step], dtype=np.int64))
        offset += len(batch)
    return np.ascontiguousarray(np.concatenate(vectors)), np.concatenate(ids)


def assemble_index(spec: IndexSpec, dimension: int, batches: Batches, total: int,
                   lists: ListAssignment | None = None) -> faiss.Index:
    """A new index of ``spec``, trained on a sample when its type needs it, holding every
    batch; an IVF index takes each vector's list from ``lists`` when given (computed on a
    cluster's workers: :mod:`index_build.coarse_lists`)."""
    index = create_index(spec, dimension)
    wanted = training_size(spec)
    if wanted:
        train_index(index, evenly_spread(batches(), total, wanted)[0])
    if lists is not None and faiss.try_extract_index_ivf(index) is not None:
        with contextlib.closing(lists(index)) as assigned:  # its tasks end even on an error
            add_with_lists(index, batches(), assigned)
        return index
    for vectors, ids in batches():
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return index


def build_best_index(
    specs: list[IndexSpec], dimension: int, batches: Batches, total: int,
    target: float | None, auto: bool, lists: ListAssignment | None = None,
) -> tuple[faiss.Index, IndexSpec, TuningResult | None]:
    """Build the candidates in order, each tuned towards ``target`` recall@10, until one
    reaches it; else keep the best. Returns the index (its search parameter set), its spec
    with the chosen parameters, and what was measured (``None``: too few ads to measure, or a
    named flat index, which is exact). ``lists``: see :func:`assemble_index`."""
    queries = tuning_query_count(total)
    if not queries or (not auto and specs[0].index_type == "flat"):
        return assemble_index(specs[0], dimension, batches, total, lists), specs[0], None
    sample, sample_ids = evenly_spread(batches(), total, queries)
    exact = exact_neighbours(sample, batches(), RECALL_K + 1)
    best: tuple[faiss.Index, IndexSpec, TuningResult] | None = None
    measured: list[str] = []
    for spec in specs:
        index = assemble_index(spec, dimension, batches, total, lists)
        result = tune(index, spec.index_type, spec.factory, sample, sample_ids, exact, target,
                      spec.search_params)
        result.memory_bytes = estimate_index_bytes(spec, total, dimension)
        measured.append(f"{spec.index_type} {result.recall_at_10:.3f}")
        if best is None or result.recall_at_10 > best[2].recall_at_10 or result.reached:
            best = (index, replace(spec, search_params=result.search_params), result)
        if result.reached:
            break
    assert best is not None
    if auto:
        best[2].note = f"auto tried {', '.join(measured)} (recall@10); kept {best[1].index_type}"
    if not best[2].reached:
        best[2].note += (f"{'; ' if best[2].note else ''}recall@10 {target} not reached: the best "
                         f"was {best[2].recall_at_10:.3f}")
    return best
