"""Write a changed index directory in place of the old one: staged beside it, swapped in whole.

``adrecall update`` and ``compact`` change an index copy-on-write: every file is written anew
into a hidden sibling (:func:`retrieval.index_store.staged_index_dir`) and the directory is
exchanged in one atomic step, so readers and a kill at any point see the old index or the new
one, never a mix. The lexical index is rebuilt from the final ads table with the tokenizer
language it was built with; the whitening transform is the one fitted at build time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from retrieval.folder_swap import fs_step
from retrieval.index_store import ADS_FILE, INDEX_FILE, Manifest, staged_index_dir, write_manifest
from retrieval.lexical_index import LexicalIndex
from retrieval.vector_removal import TOMBSTONES_FILE, save_tombstones
from retrieval.whitening import WHITENING_FILE, Whitening


def rewrite_index_dir(
    out: Path, index: faiss.Index, ads: pa.Table, manifest: Manifest,
    whitening: Whitening | None, tombstones: np.ndarray, *, progress: bool = False,
    sources: dict[str, str] | None = None,
) -> Manifest:
    """Stage ``index``, ``ads``, the whitening, the tombstones and a rebuilt lexical index (when
    ``manifest`` records one) as the new ``out``, with ``manifest`` updated to match; returns
    the manifest written."""
    with staged_index_dir(out) as staging:
        faiss.write_index(index, str(staging / INDEX_FILE))
        fs_step(f"wrote {staging / INDEX_FILE}")
        if whitening is not None:
            whitening.save(staging / WHITENING_FILE)
            fs_step(f"wrote {staging / WHITENING_FILE}")
        pq.write_table(ads, staging / ADS_FILE)
        fs_step(f"wrote {staging / ADS_FILE}")
        if len(tombstones):
            save_tombstones(staging / TOMBSTONES_FILE, tombstones)
            fs_step(f"wrote {staging / TOMBSTONES_FILE}")
        lexical = manifest.lexical
        if lexical:
            rebuilt = LexicalIndex.build(ads.column("text").to_pylist(),
                                         language=lexical["language"], progress=progress)
            rebuilt.save(staging)
            fs_step(f"wrote the lexical index in {staging}")
            lexical = rebuilt.recorded
        written = replace(
            manifest, count=ads.num_rows, tombstones=len(tombstones), lexical=lexical,
            sources={**manifest.sources, **(sources or {})},
            updated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        write_manifest(staging, written)
    return written
