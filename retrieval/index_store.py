"""The on-disk index format: one directory per index, written atomically, checked on load.

Layout::

    idx/
      manifest.json   what built it (model + weight hash, dimension, metric, normalisation,
                      FAISS factory, count, build time, source and file checksums)
      index.faiss     the FAISS index; ids are the ``faiss_id`` column of ads.parquet
      ads.parquet     faiss_id (int64), ad_id (string), text (string), metadata (JSON string)
      whitening.npz   only for whitened indexes: mean and transform applied to ads and queries
      lexical.*       only with ``build --lexical``: the BM25 index over the ads' texts, document
                      i = row i of ads.parquet (:mod:`retrieval.lexical_index`)
      tombstones.npy  only for an HNSW index with removed ads: their ids, excluded from every
                      search until compaction (:mod:`retrieval.vector_removal`)

A new index is written into a hidden sibling directory and swapped into place
(:mod:`retrieval.folder_swap`), so ``idx/`` always holds a complete index, the previous one
until the swap and the new one after it; the next build removes whatever a killed one left.
Loading cross-checks the manifest against the files it describes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from adrecall import folders
from adrecall.checksums import file_sha256
from adrecall.folders import INDEX, MANIFEST_FILE, FolderError, check_out, folder_kind
from retrieval.faiss_index import METRIC, factory_structure, index_structure, metric_name
from retrieval.folder_swap import (
    RETIRED,
    STAGED,
    fs_step,
    hidden_sibling,
    hidden_siblings,
    remove_folder,
    swap_into_place,
)
from retrieval.lexical_index import LEXICAL_FILES, LexicalIndex, LexicalIndexError
from retrieval.vector_removal import TOMBSTONES_FILE, load_tombstones
from retrieval.whitening import WHITENING_FILE, Whitening

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
ADS_FILE = "ads.parquet"
INDEX_PARTS = (MANIFEST_FILE, INDEX_FILE, ADS_FILE, WHITENING_FILE, TOMBSTONES_FILE,
               *LEXICAL_FILES)
"""Every name an index directory may hold: a folder holding any other is not only an index."""
ADS_SCHEMA = pa.schema(
    [("faiss_id", pa.int64()), ("ad_id", pa.string()), ("text", pa.string()), ("metadata", pa.string())]
)


class IndexFormatError(ValueError):
    """An index directory is missing, damaged, or does not fit the encoder it is used with."""


@dataclass
class Manifest:
    """Everything needed to trust an index directory and to encode queries the same way."""

    model: str
    model_sha256: str
    dimension: int
    model_dimension: int
    metric: str
    normalize_text: bool
    index_type: str
    factory: str
    count: int
    built_at: str
    build_seconds: float
    search_params: dict[str, int] = field(default_factory=dict)
    whitening: dict[str, int] | None = None
    wobert: bool = False
    """Whether the encoder tokenised with WoBERT (indexes from before this field: it did not)."""
    sources: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    kind: str = INDEX
    """What the folder is (:mod:`adrecall.folders`); manifests from before this field lack it."""
    adrecall_version: str | None = None
    """The adrecall that wrote the index (set by :func:`write_manifest`; older manifests lack it)."""
    lexical: dict[str, Any] | None = None
    """The lexical index's settings (:meth:`LexicalIndex.settings`); ``None``: dense only."""
    backend: dict[str, Any] | None = None
    """What ran the model during the build (:meth:`BackendChoice.to_dict`); searching with
    another back-end is allowed, as the load check compares vectors, not names."""
    tombstones: int = 0
    """Removed ads whose vectors an HNSW index still holds (ids in tombstones.npy); ``count``
    is the live ads, so the FAISS index holds ``count + tombstones`` vectors."""
    tuning: dict[str, Any] | None = None
    """How the index was chosen and its search parameter tuned, with the measured recall@10,
    memory and speed (:mod:`index_build.index_tuning`); ``None`` for fixed defaults."""
    updated_at: str | None = None
    """When ``adrecall update`` or ``compact`` last changed the index (``None``: never)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IndexFormatError(f"{where}: manifest is not valid JSON ({exc.msg})") from exc
        kind = data.get("kind", INDEX)
        if kind != INDEX:
            raise IndexFormatError(
                f"{where} holds an adrecall {kind}, not an index; build one with `adrecall build`"
            )
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexFormatError(
                f"{where}: index format version {version!r}, this adrecall reads version "
                f"{FORMAT_VERSION}; rebuild the index with this version"
            )
        data.setdefault("model_dimension", data.get("dimension"))  # before whitening, the same
        names = {f.name for f in fields(cls)}
        missing = sorted(n for n in names if n not in data and n not in _OPTIONAL)
        if missing:
            raise IndexFormatError(f"{where}: manifest lacks {missing}; rebuild the index")
        return cls(**{k: v for k, v in data.items() if k in names})


_OPTIONAL = {
    "search_params", "whitening", "wobert", "sources", "files", "format_version", "kind",
    "adrecall_version", "lexical", "backend", "tombstones", "tuning", "updated_at",
}


def adrecall_version() -> str:
    """The installed adrecall's version; ``adrecall.__version__`` when it is not installed
    (run from a source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("adrecall")
    except PackageNotFoundError:
        from adrecall import __version__

        return __version__


def check_index_out(out: Path, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse an ``out`` that a build may not write, before any work starts.

    ``out`` must be absent, empty or an adrecall index (:func:`adrecall.folders.check_out`),
    apart from ``inputs`` (the model: an index inside it would change its weight hash), and the
    folder holding it must be writable too: the new index is staged beside ``out``.
    """
    check_out(out, INDEX, overwrite=True, inputs=inputs)
    if not out.exists():
        return  # check_out probed the nearest folder above it
    try:
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise FolderError(
            f"--out {str(out)!r}: cannot write in {str(out.parent)!r} ({exc.strerror}), where a "
            "build stages the new index; choose a folder you can write to"
        ) from exc


def clean_up_leftovers(out: Path) -> None:
    """Undo what a killed build left beside ``out``.

    If ``out`` is missing because a fallback swap was killed between its two renames, the old
    index is put back. Then every staged or retired index folder is deleted. Only folders named
    by :func:`retrieval.folder_swap.hidden_sibling` that hold nothing but index files are
    touched; anything else under such a name is left alone.
    """
    for folder in hidden_siblings(out, RETIRED):
        if _foreign_entries(folder):
            continue
        if not out.exists() and not out.is_symlink() and folder_kind(folder) == INDEX:
            os.rename(folder, out)
            fs_step(f"restored {out} from {folder}")
        else:
            remove_folder(folder)
    for folder in hidden_siblings(out, STAGED):
        if not _foreign_entries(folder):
            remove_folder(folder)


def _foreign_entries(folder: Path) -> list[str]:
    return sorted(set(os.listdir(folder)) - set(INDEX_PARTS))


@contextmanager
def staged_index_dir(
    out: str | Path, after_swap: Callable[[], None] | None = None
) -> Iterator[Path]:
    """Yield an empty hidden directory beside ``out``; on success it is swapped in for ``out``
    (``after_swap`` runs right after the swap: see :func:`swap_into_place`).

    The caller writes every file (ending with :func:`write_manifest`). If the body raises, or
    ``out`` can no longer be replaced, the staged directory is removed and ``out`` is left
    untouched.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = hidden_sibling(out, STAGED)
    staging.mkdir()
    fs_step(f"created {staging}")
    try:
        yield staging
        if not (staging / MANIFEST_FILE).is_file():
            raise RuntimeError("index directory staged without a manifest")
        check_index_out(out)  # again: the build may have run for hours
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_into_place(staging, out, after_swap)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Record the checksum of every file in ``directory`` and the adrecall version, and write the
    manifest last."""
    manifest.adrecall_version = adrecall_version()
    manifest.files = {
        p.name: file_sha256(p) for p in sorted(directory.iterdir()) if p.name != MANIFEST_FILE
    }
    (directory / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
    fs_step(f"wrote {directory / MANIFEST_FILE}")


def read_manifest(path: str | Path) -> Manifest:
    """Read an index directory's manifest, refusing a missing or unreadable one."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise IndexFormatError(
            f"{path} is not an adrecall index (no {MANIFEST_FILE}); build one with `adrecall build`"
        )
    return Manifest.from_json(manifest_path.read_text(encoding="utf-8"), str(path))


def verify_files(path: str | Path, manifest: Manifest) -> None:
    """Refuse an index whose files are missing or differ from their recorded checksums
    (:func:`adrecall.folders.verify_files`, raised as :class:`IndexFormatError`)."""
    path = Path(path)
    required = [INDEX_FILE, ADS_FILE] + ([WHITENING_FILE] if manifest.whitening else [])
    required += list(LEXICAL_FILES) if manifest.lexical else []
    required += [TOMBSTONES_FILE] if manifest.tombstones else []
    for name in required:
        if name not in manifest.files:
            raise IndexFormatError(f"{path}: manifest records no checksum for {name}; rebuild")
    try:
        folders.verify_files(path, manifest.files, "rebuild the index")
    except FolderError as exc:
        raise IndexFormatError(str(exc)) from exc


@dataclass
class IndexParts:
    """What an index directory holds, loaded."""

    index: faiss.Index
    ads: pa.Table
    manifest: Manifest
    whitening: Whitening | None
    lexical: LexicalIndex | None = None
    tombstones: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Ids of removed ads whose vectors the (HNSW) index still holds; never to be returned."""


def read_index_dir(path: str | Path, verify: bool = True, mmap: bool = False) -> IndexParts:
    """Load the FAISS index, ads table, manifest, whitening, lexical index and tombstones of an
    index directory. ``mmap`` maps the FAISS index's file instead of reading it into memory
    (``faiss.IO_FLAG_MMAP_IFC``), for indexes larger than RAM: pages are read as searches touch
    them, and a reader keeps the old file's pages after an update replaces the directory."""
    path = Path(path)
    manifest = read_manifest(path)
    if verify:
        verify_files(path, manifest)
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
    index = faiss.read_index(str(path / INDEX_FILE), flags)
    ads = pq.read_table(path / ADS_FILE)
    tombstones = (load_tombstones(path / TOMBSTONES_FILE) if manifest.tombstones
                  else np.zeros(0, dtype=np.int64))
    if (index.ntotal != manifest.count + len(tombstones) or ads.num_rows != manifest.count
            or len(tombstones) != manifest.tombstones):
        raise IndexFormatError(
            f"{path}: manifest says {manifest.count} ads and {manifest.tombstones} removed ones "
            f"still in the index; the index holds {index.ntotal} vectors, the ads table "
            f"{ads.num_rows} rows and {TOMBSTONES_FILE} {len(tombstones)} ids; rebuild the index"
        )
    if index.d != manifest.dimension:
        raise IndexFormatError(
            f"{path}: index dimension {index.d} differs from the manifest's {manifest.dimension}"
        )
    _check_structure(path, index, manifest)
    whitening = None
    if manifest.whitening:
        if not (path / WHITENING_FILE).is_file():
            raise IndexFormatError(f"{path}: {WHITENING_FILE} is missing; rebuild the index")
        whitening = Whitening.load(path / WHITENING_FILE)
        if (whitening.input_dim, whitening.output_dim) != (manifest.model_dimension, manifest.dimension):
            raise IndexFormatError(
                f"{path}: the whitening maps {whitening.input_dim} to {whitening.output_dim} "
                f"dimensions, the manifest says {manifest.model_dimension} to {manifest.dimension}"
            )
    return IndexParts(index, ads, manifest, whitening, _read_lexical(path, manifest), tombstones)


def _read_lexical(path: Path, manifest: Manifest) -> LexicalIndex | None:
    """The lexical index when the manifest records one, checked against it."""
    if not manifest.lexical:
        return None
    try:
        lexical = LexicalIndex.load(path)
    except LexicalIndexError as exc:
        raise IndexFormatError(str(exc)) from exc
    if len(lexical) != manifest.count or lexical.recorded != manifest.lexical:
        raise IndexFormatError(
            f"{path}: the lexical index ({len(lexical)} documents, settings "
            f"{lexical.recorded}) does not match the manifest ({manifest.count} ads, "
            f"{manifest.lexical}); rebuild with `adrecall build --lexical`")
    return lexical


def _check_structure(path: Path, index: faiss.Index, manifest: Manifest) -> None:
    """Refuse a manifest whose metric or factory string does not describe ``index``."""
    if manifest.metric != METRIC or metric_name(index.metric_type) != METRIC:
        raise IndexFormatError(
            f"{path}: the manifest's metric is {manifest.metric!r} and the FAISS index measures "
            f"{metric_name(index.metric_type)!r}; adrecall indexes use {METRIC!r}: restore the "
            "manifest or rebuild the index"
        )
    try:
        expected = factory_structure(manifest.factory, index.d)
    except ValueError as exc:
        raise IndexFormatError(f"{path}: {exc}; restore the manifest or rebuild the index") from exc
    found = index_structure(index)
    if found != expected:
        raise IndexFormatError(
            f"{path}: the manifest's factory {manifest.factory!r} builds {' > '.join(expected)} "
            f"but {INDEX_FILE} holds {' > '.join(found)}; restore the manifest or rebuild the index"
        )


def directory_bytes(path: str | Path) -> int:
    """Total size of the files in an index directory."""
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())
