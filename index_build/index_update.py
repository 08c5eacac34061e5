"""``adrecall update``: add new ads, replace changed ones (same ad id) and delete ads, in place
of an index directory, without a full rebuild.

New and changed ads are embedded with the index's own encoder (the model and weight hash the
manifest records, checked as a search checks them) and whitened with the stored transform, not
a refitted one. A changed ad's old vector is removed and its new one added under a new FAISS
id; FAISS ids are never reused, so a removed ad cannot come back. HNSW keeps removed vectors
as tombstones (:mod:`retrieval.vector_removal`) until ``adrecall compact``. The directory is
rewritten copy-on-write and swapped in atomically (:mod:`index_build.index_rewrite`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from adrecall.checksums import file_sha256
from index_build.ad_source import AdSource
from index_build.index_rewrite import rewrite_index_dir
from index_build.shards import embed_chunk
from retrieval.encoder import Encoder
from retrieval.index_store import (
    ADS_SCHEMA,
    check_index_out,
    clean_up_leftovers,
    directory_bytes,
    read_manifest,
)
from retrieval.retriever import Retriever
from retrieval.vector_removal import remove_vectors


@dataclass(frozen=True)
class UpdateSummary:
    """What an update changed: ads ``added`` (new ids), ``replaced`` (ids already in the index),
    ``deleted``; ``not_found``: ids to delete that the index did not hold."""

    index: str
    added: int
    replaced: int
    deleted: int
    not_found: int
    count: int
    tombstones: int
    seconds: float
    ads_per_second: float
    bytes_on_disk: int
    truncated: int
    backend: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def update_index(
    index: str | Path,
    *,
    ads: str | Path | None = None,
    delete: str | Path | Iterable[str] | None = None,
    model: str | Path | Encoder | None = None,
    batch_size: int = 128,
    chunk_rows: int = 4096,
    id_column: str = "ad_id",
    text_column: str = "text",
    progress: bool = True,
    backend: str = "auto",
    threads: int | None = None,
) -> UpdateSummary:
    """Add or replace the ads of table ``ads`` and delete the ad ids of ``delete`` (a text file
    with one id per line, or the ids themselves) in the index directory ``index``.

    Readers see the old index until the new one is complete; a kill at any point leaves one of
    the two. The model defaults to the manifest's. An id both added and deleted is refused.
    """
    started = time.perf_counter()
    path = Path(index).resolve() if Path(index).is_symlink() else Path(index)
    if ads is None and delete is None:
        raise ValueError("nothing to update: give ads=... (--ads TABLE) and/or delete=... "
                         "(--delete IDS.txt)")
    manifest = read_manifest(path)  # refuses anything that is not an index, before the model
    check_index_out(path)
    source = AdSource(Path(ads), id_column, text_column) if ads is not None else None
    if source is not None:
        source.scan()
    doomed = _delete_ids(delete)
    new_ids = [a for chunk in source.chunks(chunk_rows) for a in chunk.ad_ids] if source else []
    both = sorted(set(new_ids) & doomed)
    if both:
        raise ValueError(f"ad ids {both[:5]} are both in the ads to add and in the ids to delete; "
                         "remove them from one of the two")
    clean_up_leftovers(path)
    retriever = Retriever.load(path, model=model, backend=backend, threads=threads)
    old = retriever.ads
    old_ids = old.column("faiss_id").to_numpy()
    by_ad = dict(zip(old.column("ad_id").to_pylist(), old_ids.tolist()))
    replaced = [a for a in new_ids if a in by_ad]
    deleted = [a for a in doomed if a in by_ad]
    gone = np.array([by_ad[a] for a in replaced + deleted], dtype=np.int64)
    if old.num_rows - len(gone) + len(new_ids) == 0:
        raise ValueError(f"the update deletes all {old.num_rows} ads of {path}; an index holds at "
                         "least one ad (build a new one instead)")
    first_id = int(max(old_ids.max(initial=-1), retriever.tombstones.max(initial=-1))) + 1
    rows, vectors, truncated = _embed(source, retriever, first_id, batch_size, chunk_rows,
                                      progress) if source else (None, None, 0)
    tombstones = np.union1d(retriever.tombstones, remove_vectors(retriever.index, gone))
    if vectors is not None:
        retriever.index.add_with_ids(vectors, rows.column("faiss_id").to_numpy())
    kept = old.filter(pc.invert(pc.is_in(old.column("faiss_id"), pa.array(gone, pa.int64()))))
    table = pa.concat_tables([kept, rows]) if rows is not None else kept
    written = rewrite_index_dir(
        path, retriever.index, table, manifest, retriever.whitening, tombstones,
        progress=progress,
        sources={str(source.path.resolve()): file_sha256(source.path)} if source else None,
    )
    seconds = time.perf_counter() - started
    changed = len(new_ids) + len(deleted)
    return UpdateSummary(
        index=str(path), added=len(new_ids) - len(replaced), replaced=len(replaced),
        deleted=len(deleted), not_found=len(doomed) - len(deleted), count=written.count,
        tombstones=written.tombstones, seconds=round(seconds, 3),
        ads_per_second=round(changed / seconds, 1) if seconds > 0 else 0.0,
        bytes_on_disk=directory_bytes(path), truncated=truncated,
        backend=retriever.encoder.backend_choice.describe(),
    )


def _delete_ids(delete: str | Path | Iterable[str] | None) -> set[str]:
    """The ad ids to delete: a file's non-blank lines, or the given ids."""
    if delete is None:
        return set()
    if isinstance(delete, (str, Path)):
        path = Path(delete)
        if not path.is_file():
            raise FileNotFoundError(f"--delete {str(path)!r}: no such file; give a text file "
                                    "with one ad id per line")
        return {line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()}
    return {str(ad_id) for ad_id in delete}


def _embed(source: AdSource, retriever: Retriever, first_id: int, batch_size: int,
           chunk_rows: int, progress: bool) -> tuple[pa.Table, np.ndarray, int]:
    """The new ads' rows (faiss ids from ``first_id`` on) and their index-ready vectors."""
    tables, parts, truncated, next_id = [], [], 0, first_id
    with tqdm(unit="ad", desc="encoding ads", disable=not progress) as bar:
        for chunk in source.chunks(chunk_rows):
            vectors, cut = embed_chunk(chunk, retriever.encoder, batch_size)
            if retriever.whitening is not None:
                vectors = retriever.whitening.apply(vectors)
            parts.append(np.ascontiguousarray(vectors, dtype=np.float32))
            tables.append(pa.table({
                "faiss_id": pa.array(np.arange(next_id, next_id + len(chunk)), pa.int64()),
                "ad_id": pa.array(chunk.ad_ids, pa.string()),
                "text": pa.array(chunk.texts, pa.string()),
                "metadata": pa.array(chunk.metadata, pa.string()),
            }, schema=ADS_SCHEMA))
            truncated += cut
            next_id += len(chunk)
            bar.update(len(chunk))
    return pa.concat_tables(tables), np.concatenate(parts), truncated
