"""Tune an approximate index's search parameter on held-out real vectors.

The tuning queries are vectors of ads in the index, each left out of its own results (both
the exact and the approximate list drop the query's own id), so they are real embeddings from
the catalogue's distribution without the free self-match. ``efSearch`` (HNSW) or ``nprobe``
(IVF, IVF-PQ) grows over a ladder of values until recall@10 against exact search reaches the
target; the smallest value that does is kept. Random vectors are useless here: on them HNSW
recall is near 0.1, on real embeddings 0.99.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import faiss
import numpy as np

from retrieval.faiss_index import TUNED_PARAMS, apply_search_params, ivf_list_count

RECALL_K = 10
TUNING_QUERIES = 1000
MIN_TUNING_ADS = 100
"""Below this many ads an index is measured and tuned no more: its searches are near exact."""
EF_SEARCH_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


@dataclass
class TuningResult:
    """What the manifest records of one measured index: the parameter chosen and what it gave."""

    index_type: str
    target_recall: float | None
    recall_at_10: float
    reached: bool
    search_params: dict[str, int] = field(default_factory=dict)
    tried: dict[str, float] = field(default_factory=dict)
    queries: int = 0
    batch_qps: float = 0.0
    memory_bytes: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def tuning_query_count(count: int) -> int:
    """Held-out queries for an index of ``count`` ads (0: too small to tune)."""
    return 0 if count < MIN_TUNING_ADS else min(TUNING_QUERIES, count // 10)


def exact_neighbours(
    queries: np.ndarray, batches: Iterable[tuple[np.ndarray, np.ndarray]], k: int
) -> np.ndarray:
    """The ids of each query's ``k`` nearest vectors by inner product over ``(vectors, ids)``
    batches (read one at a time, so the whole catalogue need not fit in memory)."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for vectors, ids in batches:
        scores = queries @ np.ascontiguousarray(vectors, dtype=np.float32).T
        depth = min(k, scores.shape[1])
        top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
        heap.add_result(np.take_along_axis(scores, top, axis=1).astype(np.float32),
                        np.asarray(ids, dtype=np.int64)[top])
    heap.finalize()
    return heap.I


def recall_at_k(found: np.ndarray, exact: np.ndarray, query_ids: np.ndarray, k: int) -> float:
    """Mean share of each query's exact top ``k`` (its own id left out of both lists) that
    ``found`` holds."""
    total = 0.0
    for row, own in enumerate(query_ids):
        truth = [i for i in exact[row] if i != own and i >= 0][:k]
        got = {i for i in found[row] if i != own and i >= 0}
        total += len(got.intersection(truth)) / max(1, len(truth))
    return total / max(1, len(query_ids))


def measure(index: faiss.Index, queries: np.ndarray, query_ids: np.ndarray,
            exact: np.ndarray) -> tuple[float, float]:
    """recall@10 (leave-one-out) and batch queries per second of ``index`` as it is set now."""
    started = time.perf_counter()
    _, found = index.search(queries, RECALL_K + 1)
    seconds = time.perf_counter() - started
    return recall_at_k(found, exact, query_ids, RECALL_K), len(queries) / max(seconds, 1e-9)


def tune(
    index: faiss.Index, index_type: str, factory: str, queries: np.ndarray,
    query_ids: np.ndarray, exact: np.ndarray, target: float | None,
    fixed: dict[str, int],
) -> TuningResult:
    """Measure ``index``; with a ``target``, first raise its search parameter along the ladder
    until recall@10 reaches it (the parameter is left set on ``index``). Without one, the
    ``fixed`` parameters are only measured."""
    name = TUNED_PARAMS.get(index_type)
    ladder = ([fixed[name]] if name and target is None else _ladder(index_type, factory)
              if name else [])
    tried: dict[str, float] = {}
    recall, qps, chosen = 0.0, 0.0, dict(fixed)
    for value in ladder or [None]:
        if value is not None:
            chosen = {name: int(value)}  # type: ignore[dict-item]
            apply_search_params(index, chosen)
        recall, qps = measure(index, queries, query_ids, exact)
        if value is not None:
            tried[str(value)] = round(recall, 4)
        if target is not None and recall >= target:
            break
    reached = target is None or recall >= target
    return TuningResult(index_type, target, round(recall, 4), reached,
                        chosen if name else {}, tried, len(queries), round(qps, 1))


def _ladder(index_type: str, factory: str) -> list[int]:
    if index_type == "hnsw":
        return list(EF_SEARCH_LADDER)
    nlist = ivf_list_count(factory)
    values, probe = [], 1
    while probe < nlist:
        values += [probe] + ([probe * 3 // 2] if probe >= 2 else [])
        probe *= 2
    return sorted({v for v in values if v < nlist} | {nlist})
