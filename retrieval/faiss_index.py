"""FAISS index types offered by adrecall: factory strings, training and search parameters.

Vectors are L2-normalised, so the metric is inner product (= cosine). Every index is wrapped in
``IDMap2`` so ads keep stable int64 ids when an index is extended or pruned later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import faiss
import numpy as np

INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq", "sq8")
"""flat: exact; hnsw: graph (fast, no removal); ivf: inverted lists of full vectors; ivfpq:
inverted lists of product-quantised codes (smallest); sq8: every vector in 8-bit scalars (exact
scan, a quarter of flat's memory)."""
IVF_TYPES = ("ivf", "ivfpq")
"""The types built on inverted lists: trained centroids, each vector added to its nearest."""
TUNED_PARAMS = {"hnsw": "efSearch", "ivf": "nprobe", "ivfpq": "nprobe"}
"""The search parameter that trades speed for recall, per index type that has one."""
METRIC = "inner_product"
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 64
IVF_POINTS_PER_LIST = 39  # FAISS warns below 39 training points per centroid
IVF_TRAINING_PER_LIST = IVF_POINTS_PER_LIST
"""Training points per IVF list: k-means on a sample, not on every ad (at 1M ads and 4,000
lists, the 256 points per list that FAISS would take cost 6.5x longer)."""
IVF_KMEANS_ITERATIONS = 10
"""k-means iterations of IVF training (FAISS's default is 25; the centroids barely move after
10, and at 1M ads each iteration costs tens of seconds on 2 cores)."""
PQ_CODE_VALUES = 256  # 8-bit codes: each sub-quantizer has 256 centroids to train
SQ_TRAINING = 65_536


@dataclass(frozen=True)
class IndexSpec:
    """What to build: the FAISS factory string and the search parameters to apply on load."""

    index_type: str
    factory: str
    search_params: dict[str, int] = field(default_factory=dict)


def index_spec(index_type: str, count: int, dimension: int) -> IndexSpec:
    """Choose the factory string and parameters for ``count`` vectors of ``dimension``."""
    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
    if count < 1:
        raise ValueError(f"cannot build an index of {count} vectors")
    if index_type == "flat":
        return IndexSpec("flat", "IDMap2,Flat")
    if index_type == "hnsw":
        return IndexSpec("hnsw", f"IDMap2,HNSW{HNSW_NEIGHBOURS},Flat", {"efSearch": HNSW_EF_SEARCH})
    if index_type == "sq8":
        return IndexSpec("sq8", "IDMap2,SQ8")
    nlist = ivf_lists(count)
    params = {"nprobe": ivf_probes(nlist)}
    if index_type == "ivf":
        return IndexSpec("ivf", f"IDMap2,IVF{nlist},Flat", params)
    if count < PQ_CODE_VALUES:
        raise ValueError(f"an ivfpq index trains {PQ_CODE_VALUES} centroids per sub-quantizer and "
                         f"needs at least {PQ_CODE_VALUES} ads, got {count}; use flat or sq8")
    return IndexSpec("ivfpq", f"IDMap2,IVF{nlist},PQ{pq_subquantizers(dimension)}x8", params)


def pq_subquantizers(dimension: int) -> int:
    """Sub-quantizers of an IVF-PQ code: the largest divisor of ``dimension`` up to a quarter of
    it (96 one-byte codes for 384 dimensions: 16x smaller than float32)."""
    return max(m for m in range(1, max(1, dimension // 4) + 1) if dimension % m == 0)


def ivf_lists(count: int) -> int:
    """Number of IVF lists: about 4·√n, but never fewer than 39 training points per list."""
    return max(1, min(int(4 * math.sqrt(count)), count // IVF_POINTS_PER_LIST))


def ivf_probes(nlist: int) -> int:
    """Lists probed per query: 1/16 of them, at least 16 (or all, for small indexes).

    Fewer probes lose deep recall first: on QBQTC titles 1/32 of 454 lists kept recall@100 at
    0.47 against 0.56 for exact search. Override per index with ``search_params``.
    """
    return min(nlist, max(16, nlist // 16))


def training_size(spec: IndexSpec) -> int:
    """How many vectors the index trains on (0 when it needs no training)."""
    if spec.index_type == "sq8":
        return SQ_TRAINING
    if spec.index_type not in IVF_TYPES:
        return 0
    wanted = ivf_list_count(spec.factory) * IVF_TRAINING_PER_LIST
    return max(wanted, PQ_CODE_VALUES * IVF_POINTS_PER_LIST) if spec.index_type == "ivfpq" else wanted


def ivf_list_count(factory: str) -> int:
    """``nlist`` of an ``IVF<nlist>`` factory string."""
    return int(factory.split("IVF")[1].split(",")[0])


def create_index(spec: IndexSpec, dimension: int) -> faiss.Index:
    """An empty FAISS index for ``spec`` with its search parameters applied.

    IVF trains its centroids in :data:`IVF_KMEANS_ITERATIONS` rounds. IVF-PQ skips FAISS's
    polysemous training (codes ordered for Hamming filtering, which
    adrecall does not use): on 3,000 ads of 384 dimensions it took 200 of the 210 seconds.
    """
    index = faiss.index_factory(dimension, spec.factory, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.cp.niter = IVF_KMEANS_ITERATIONS
        if isinstance(faiss.downcast_index(ivf), faiss.IndexIVFPQ):
            faiss.downcast_index(ivf).do_polysemous_training = False
    apply_search_params(index, spec.search_params)
    return index


def apply_search_params(index: faiss.Index, params: dict[str, int]) -> None:
    """Set search parameters such as ``nprobe`` or ``efSearch`` through any wrappers."""
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, int(value))


def search_parameters(
    index: faiss.Index, overrides: dict[str, int] | None = None, excluded: np.ndarray | None = None
) -> faiss.SearchParameters | None:
    """Per-call FAISS search parameters: ``overrides`` of ``nprobe``/``efSearch`` for this call
    only, and ``excluded`` ids never returned (HNSW's removed ads); ``None`` when neither.

    Make a new one for every search: the ``IDMap2`` wrapper edits it while it searches.
    """
    overrides = dict(overrides or {})
    if not overrides and (excluded is None or not len(excluded)):
        return None
    inner = faiss.downcast_index(index.index if isinstance(index, faiss.IndexIDMap) else index)
    if isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()
        params.efSearch = int(overrides.pop("efSearch", inner.hnsw.efSearch))
    elif isinstance(inner, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        params.nprobe = int(overrides.pop("nprobe", inner.nprobe))
    else:
        params = faiss.SearchParameters()
    if overrides:
        raise ValueError(f"search parameters {sorted(overrides)} do not apply to a "
                         f"{type(inner).__name__} index; use efSearch for hnsw, nprobe for ivf "
                         "and ivfpq")
    if excluded is not None and len(excluded):
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64))
        params.sel = faiss.IDSelectorNot(selector)
        params._keep = selector  # the C++ side does not own it: keep it alive with params
    return params


def metric_name(metric_type: int) -> str:
    """How a manifest names a FAISS metric type (``"inner_product"``, ``"l2"``)."""
    return _METRIC_NAMES.get(metric_type, f"FAISS metric type {metric_type}")


_METRIC_NAMES = {faiss.METRIC_INNER_PRODUCT: METRIC, faiss.METRIC_L2: "l2"}


def index_structure(index: faiss.Index) -> list[str]:
    """The FAISS classes nested in ``index``, wrapper first, each with the sizes that define it.

    For example ``['IndexIDMap2 d=384', 'IndexHNSWFlat d=384 M=32', 'IndexFlatIP d=384']``:
    two indexes with the same structure came from the same factory string.
    """
    parts = []
    level: faiss.Index | None = faiss.downcast_index(index)
    while level is not None:
        described = f"{type(level).__name__} d={level.d}"
        inner = None
        if isinstance(level, faiss.IndexIDMap):
            inner = level.index
        elif isinstance(level, faiss.IndexHNSW):
            described += f" M={level.hnsw.nb_neighbors(1)}"
            inner = level.storage
        elif isinstance(level, faiss.IndexIVF):
            described += f" nlist={level.nlist}"
            inner = level.quantizer
        parts.append(described)
        level = faiss.downcast_index(inner) if inner is not None else None
    return parts


def factory_structure(factory: str, dimension: int) -> list[str]:
    """:func:`index_structure` of an empty index built from ``factory``, as read back from disk
    (reading gives the metric-specific classes, such as ``IndexFlatIP``)."""
    try:
        built = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"FAISS cannot build the factory string {factory!r}") from exc
    return index_structure(faiss.deserialize_index(faiss.serialize_index(built)))


def train_index(index: faiss.Index, sample: np.ndarray) -> None:
    """Train ``index`` on a sample of vectors when its type needs it (IVF)."""
    if not index.is_trained:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
