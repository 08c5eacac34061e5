"""``adrecall compact``: rebuild an updated index as a fresh build of its current ads would be.

After updates an index carries what removal left behind: an HNSW graph still holds the
vectors of removed ads (tombstones, filtered from every search), FAISS ids have gaps, and IVF
centroids were trained on the ads of the first build. Compaction numbers the ads 0..n-1 in
table order and, for the types that store exact vectors (flat, HNSW, IVF-Flat), rebuilds the
index from them (re-training IVF on the current ads, exactly as a build does), so searches
equal those of a fresh build over the same ads. SQ8 and IVF-PQ store lossy codes that
``update`` already removed for real; compaction renumbers their ids and keeps their trained
quantizers (re-encoding decoded vectors would only add error). No ad is re-embedded and no
model is loaded. The directory is replaced atomically (:mod:`index_build.index_rewrite`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa

from index_build.index_assembly import Batches, assemble_index
from index_build.index_rewrite import rewrite_index_dir
from retrieval.faiss_index import IndexSpec
from retrieval.index_store import (
    check_index_out,
    clean_up_leftovers,
    directory_bytes,
    read_index_dir,
)

REBUILT_TYPES = ("flat", "hnsw", "ivf")
"""Index types whose stored vectors are exact, so compaction rebuilds them from scratch."""
_BATCH = 65_536


@dataclass(frozen=True)
class CompactSummary:
    """What compaction did: ads kept, tombstoned vectors dropped, bytes before and after."""

    index: str
    count: int
    dropped_tombstones: int
    rebuilt: bool
    seconds: float
    bytes_before: int
    bytes_after: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def compact_index(index: str | Path, *, progress: bool = True) -> CompactSummary:
    """Compact the index directory ``index`` (see the module docstring); readers see the old
    index until the compacted one is complete, and a kill leaves one of the two."""
    started = time.perf_counter()
    path = Path(index).resolve() if Path(index).is_symlink() else Path(index)
    parts = read_index_dir(path)
    check_index_out(path)
    clean_up_leftovers(path)
    before = directory_bytes(path)
    manifest = parts.manifest
    old_ids = parts.ads.column("faiss_id").to_numpy()
    new_ids = np.arange(len(old_ids), dtype=np.int64)
    rebuilt = manifest.index_type in REBUILT_TYPES
    if rebuilt:
        spec = IndexSpec(manifest.index_type, manifest.factory, manifest.search_params)
        compacted = assemble_index(spec, manifest.dimension,
                                   _stored_vectors(parts.index, old_ids), len(old_ids))
    else:
        compacted = _renumbered(parts.index, old_ids)
    ads = parts.ads.set_column(0, "faiss_id", pa.array(new_ids, pa.int64()))
    written = rewrite_index_dir(path, compacted, ads, manifest, parts.whitening,
                                np.zeros(0, dtype=np.int64), progress=progress)
    return CompactSummary(
        index=str(path), count=written.count, dropped_tombstones=len(parts.tombstones),
        rebuilt=rebuilt, seconds=round(time.perf_counter() - started, 3),
        bytes_before=before, bytes_after=directory_bytes(path),
    )


def _stored_vectors(index: faiss.Index, ids: np.ndarray) -> Batches:
    """Batches of the vectors of ``ids`` read back from ``index``, numbered 0..n-1."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.make_direct_map()

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start:start + _BATCH]
            yield (index.reconstruct_batch(chunk),
                   np.arange(start, start + len(chunk), dtype=np.int64))

    return batches


def _renumbered(index: faiss.Index, ids: np.ndarray) -> faiss.Index:
    """``index`` with the id of the ad at table row i set to i."""
    positions = faiss.vector_to_array(index.id_map)
    order = np.argsort(ids)
    renumbered = order[np.searchsorted(ids[order], positions)].astype(np.int64)
    faiss.copy_array_to_vector(renumbered, index.id_map)
    index.construct_rev_map()
    return index
