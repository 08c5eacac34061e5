"""Remove ads' vectors from a FAISS index, or mark them removed where FAISS cannot.

Flat, SQ8 and IVF indexes lose the vectors for real (``remove_ids``). FAISS's HNSW graph cannot
drop a node, so an HNSW index keeps the vectors of removed ads and the index directory lists
their ids in ``tombstones.npy``: every search excludes them (a FAISS ID selector, so a query
still gets ``k`` live hits), until ``adrecall compact`` rebuilds the graph without them.

``IDMap2`` over IVF needs a repair after ``remove_ids``: the wrapper compacts its id table by
position, while the IVF lists keep the positions the vectors had when added, so every id after
the first removed one would point at the wrong ad. :func:`remove_vectors` renumbers the lists'
entries to the compacted positions.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

TOMBSTONES_FILE = "tombstones.npy"


def removes_in_place(index: faiss.Index) -> bool:
    """Whether FAISS can delete vectors from ``index`` (every adrecall type but HNSW)."""
    inner = index.index if isinstance(index, faiss.IndexIDMap) else index
    return not isinstance(faiss.downcast_index(inner), faiss.IndexHNSW)


def remove_vectors(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """Delete the vectors of ``ids`` from an ``IDMap2`` index; returns the ids that could only
    be tombstoned (all of them for HNSW, none otherwise)."""
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    if not len(ids):
        return ids
    if not removes_in_place(index):
        return ids
    positions = faiss.vector_to_array(index.id_map)
    removed = np.isin(positions, ids)
    compacted = np.arange(len(positions), dtype=np.int64) - np.cumsum(removed)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and ivf.direct_map.type != faiss.DirectMap.NoMap:
        ivf.make_direct_map(False)  # FAISS cannot remove through a direct map's array
    index.remove_ids(faiss.IDSelectorBatch(ids))
    if ivf is not None:
        lists = ivf.invlists
        for number in range(ivf.nlist):
            size = lists.list_size(number)
            if size:
                entries = faiss.rev_swig_ptr(lists.get_ids(number), size)
                entries[:] = compacted[entries]
    return np.zeros(0, dtype=np.int64)


def save_tombstones(path: Path, ids: np.ndarray) -> None:
    """Write the removed-but-kept ids (int64, sorted, no pickle)."""
    np.save(path, np.unique(np.asarray(ids, dtype=np.int64)), allow_pickle=False)


def load_tombstones(path: Path) -> np.ndarray:
    """The ids :func:`save_tombstones` wrote."""
    ids = np.load(path, allow_pickle=False)
    if ids.dtype != np.int64 or ids.ndim != 1:
        raise ValueError(f"{path}: tombstones must be a 1-d int64 array, got {ids.dtype} "
                         f"{ids.shape}; rebuild or compact the index")
    return ids
