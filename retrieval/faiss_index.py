"""FAISS index types offered by adrecall: factory strings, training and search parameters.

Vectors are L2-normalised, so the metric is inner product (= cosine). Every index is wrapped in
``IDMap2`` so ads keep stable int64 ids when an index is extended or pruned later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import faiss
import numpy as np

INDEX_TYPES = ("flat", "hnsw", "ivf")
METRIC = "inner_product"
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 64
IVF_POINTS_PER_LIST = 39  # FAISS warns below 39 training points per centroid


@dataclass(frozen=True)
class IndexSpec:
    """What to build: the FAISS factory string and the search parameters to apply on load."""

    index_type: str
    factory: str
    search_params: dict[str, int] = field(default_factory=dict)


def index_spec(index_type: str, count: int) -> IndexSpec:
    """Choose the factory string and parameters for ``count`` vectors of the given type."""
    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
    if count < 1:
        raise ValueError(f"cannot build an index of {count} vectors")
    if index_type == "flat":
        return IndexSpec("flat", "IDMap2,Flat")
    if index_type == "hnsw":
        return IndexSpec("hnsw", f"IDMap2,HNSW{HNSW_NEIGHBOURS},Flat", {"efSearch": HNSW_EF_SEARCH})
    nlist = ivf_lists(count)
    return IndexSpec("ivf", f"IDMap2,IVF{nlist},Flat", {"nprobe": ivf_probes(nlist)})


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
    """How many vectors the index needs for training (0 when it needs none)."""
    if spec.index_type != "ivf":
        return 0
    nlist = int(spec.factory.split("IVF")[1].split(",")[0])
    return nlist * 256


def create_index(spec: IndexSpec, dimension: int) -> faiss.Index:
    """An empty FAISS index for ``spec`` with its search parameters applied."""
    index = faiss.index_factory(dimension, spec.factory, faiss.METRIC_INNER_PRODUCT)
    apply_search_params(index, spec.search_params)
    return index


def apply_search_params(index: faiss.Index, params: dict[str, int]) -> None:
    """Set search parameters such as ``nprobe`` or ``efSearch`` through any wrappers."""
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, int(value))


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
