"""IVF list numbers computed apart from the index: the costly half of adding to an IVF index.

Adding n vectors to an IVF index of nlist lists first finds each vector's nearest centroid
(n x nlist inner products), then appends the vector, or its PQ code, to that list. A cluster
build trains the index once on this machine, sends the trained coarse quantizer (and the
whitening, if any) to the workers, which assign the vectors of their shards; this machine then
appends with those assignments, which gives the same index, byte for byte, as adding the
vectors itself (``tests/test_dask_build.py``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass

import faiss
import numpy as np

from retrieval.whitening import Whitening

ListAssignment = Callable[[faiss.Index], Generator[np.ndarray, None, None]]
"""Given the trained index: the list of every vector, batch by batch in the batches' order
(a generator, closed when the index is filled or filling fails)."""


def assigner_bytes(index: faiss.Index, whitening: Whitening | None) -> bytes:
    """The trained coarse quantizer of ``index`` and the whitening, as one ``.npz`` (arrays
    only: nothing is unpickled when a worker reads it)."""
    quantizer = faiss.extract_index_ivf(index).quantizer
    arrays = {"quantizer": faiss.serialize_index(quantizer)}
    if whitening is not None:
        arrays |= {"mean": whitening.mean, "transform": whitening.transform}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@dataclass(frozen=True)
class CoarseAssigner:
    """Finds the IVF list of raw encoder vectors: whitened first when the index is."""

    quantizer: faiss.Index
    whitening: Whitening | None

    @classmethod
    def from_bytes(cls, data: bytes) -> CoarseAssigner:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            whitening = (Whitening(arrays["mean"], arrays["transform"])
                         if "mean" in arrays else None)
            return cls(faiss.deserialize_index(arrays["quantizer"]), whitening)

    def lists(self, vectors: np.ndarray) -> np.ndarray:
        """The list number of each vector, as the index's own ``add`` would choose it."""
        vectors = (self.whitening.apply(vectors) if self.whitening is not None
                   else np.ascontiguousarray(vectors, dtype=np.float32))
        _, nearest = self.quantizer.search(vectors, 1)
        return np.ascontiguousarray(nearest.ravel(), dtype=np.int64)


def add_with_lists(index: faiss.Index, batches: Iterable[tuple[np.ndarray, np.ndarray]],
                   lists: Iterable[np.ndarray]) -> None:
    """Append every batch to the trained, empty ``IDMap2,IVF...`` ``index`` at the given lists."""
    if index.ntotal:
        raise ValueError(f"add_with_lists fills an empty index; this one holds {index.ntotal}")
    ivf = faiss.extract_index_ivf(index)
    all_ids = []
    for (vectors, ids), assigned in zip(batches, lists, strict=True):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        assigned = np.ascontiguousarray(assigned, dtype=np.int64)
        if assigned.shape != (len(vectors),):
            raise ValueError(f"{len(vectors)} vectors came with {assigned.shape} list numbers")
        positions = np.arange(ivf.ntotal, ivf.ntotal + len(vectors), dtype=np.int64)
        ivf.add_core(len(vectors), faiss.swig_ptr(vectors), faiss.swig_ptr(positions),
                     faiss.swig_ptr(assigned))
        all_ids.append(np.asarray(ids, dtype=np.int64))
    faiss.copy_array_to_vector(np.concatenate(all_ids) if all_ids else np.zeros(0, np.int64),
                               index.id_map)
    index.ntotal = ivf.ntotal
    index.construct_rev_map()
