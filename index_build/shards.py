"""A chunk's work as plain functions: encode it, write its shard, read shards back.

A shard is three files in a shard store: ``shard-NNNNNN-KEY.npy`` (float32 vectors),
``shard-NNNNNN-KEY.parquet`` (faiss_id, ad_id, text, metadata) and ``shard-NNNNNN-KEY.json``
(row count and truncations), written last as the mark that the shard is complete. ``KEY`` is
the build's settings key (:func:`index_build.checkpoint.build_key`), so a shard that a worker
of an earlier build with other settings writes late is never taken for this build's. Each file
is written to a temporary name of its own and renamed, so a killed job never leaves a half
shard that looks whole, and two attempts at one chunk (a worker presumed dead that is still
running) never write into the same temporary file. A store is a local folder (the build's
checkpoint) or a folder the build owns inside a user's ``--shard-store`` (any fsspec URL), so
workers of a cluster write shards where the merging client reads them, with the same methods.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from tqdm.auto import tqdm

from index_build.ad_source import AdChunk
from retrieval.encoder import Encoder
from retrieval.folder_swap import fs_step
from retrieval.index_store import ADS_SCHEMA

ATTEMPT_TAG = ".attempt-"
"""An attempt file ``shard-NNNNNN-KEY.attempt-HOST-PID-XXXX`` says a cluster worker started a
chunk."""
OWNED_FOLDER = "adrecall-shards-"
"""The folder a build creates, and later deletes, inside a user's ``--shard-store``."""


@dataclass(frozen=True)
class ShardInfo:
    """What a completed shard holds."""

    number: int
    rows: int
    truncated: int


def check_shard_store(location: str, out: Path) -> str:
    """``--shard-store`` checked before any work: a folder or an fsspec URL whose file system
    is installed, not a file, not inside ``out`` (the index swap would take the shards away).
    Returns it as a URL, or a local folder made absolute (as workers must see it)."""
    if not location.strip():
        raise ValueError("--shard-store is empty; give a folder or an fsspec URL such as "
                         "file:///shared/shards or s3://bucket/shards")
    try:
        fs, root = fsspec.core.url_to_fs(location)
    except ImportError as exc:
        raise ValueError(f"--shard-store {location!r} needs a package for its protocol: {exc}") \
            from exc
    except ValueError as exc:
        raise ValueError(f"--shard-store {location!r}: {exc}; give a folder or an fsspec URL "
                         "such as file:///shared/shards or s3://bucket/shards") from exc
    if fs.isfile(root):
        raise ValueError(f"--shard-store {location!r} is a file; give a folder")
    if not isinstance(fs, LocalFileSystem):
        return location.rstrip("/")
    folder, index = Path(root).resolve(), out.resolve()
    if folder == index or index in folder.parents:
        raise ValueError(f"--shard-store {location!r} is inside --out {str(out)!r}, which the "
                         "finished index replaces; give a folder outside it")
    return str(folder)


@functools.lru_cache(maxsize=64)
def _filesystem(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(location)
    return fs, root.rstrip("/")


@dataclass(frozen=True)
class ShardStore:
    """One build's shards: the folder (a local path or an fsspec URL) and the build's key."""

    location: str
    key: str

    @classmethod
    def for_build(cls, checkpoint: Path, shard_store: str | None, key: str) -> ShardStore:
        """The checkpoint folder, or the folder this build owns in the user's store."""
        if shard_store is None:
            return cls(str(checkpoint.resolve()), key)
        return cls(f"{shard_store.rstrip('/')}/{OWNED_FOLDER}{key}", key)

    @property
    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return _filesystem(self.location)

    def _path(self, number: int, suffix: str) -> str:
        return f"{self._fs[1]}/shard-{number:06d}-{self.key}{suffix}"

    def is_local(self) -> bool:
        return isinstance(self._fs[0], LocalFileSystem)

    def prepare(self, fresh: bool) -> None:
        """Create the folder; a fresh build first deletes what an earlier killed build of the
        same key left in it (the folder is named by the key, so it is this build's)."""
        fs, root = self._fs
        if fresh and fs.exists(root):
            fs.rm(root, recursive=True)
        fs.makedirs(root, exist_ok=True)

    def remove(self) -> None:
        """Delete the folder and every shard in it (after the index is safely in place)."""
        fs, root = self._fs
        if fs.exists(root):
            fs.rm(root, recursive=True)

    def write(self, chunk: AdChunk, vectors: np.ndarray, truncated: int) -> ShardInfo:
        """Write one chunk's vectors and rows; faiss ids are the ads' data row numbers."""
        if len(vectors) != len(chunk):
            raise ValueError(f"chunk {chunk.number} has {len(chunk)} ads but {len(vectors)} vectors")
        rows = pa.table(
            {
                "faiss_id": pa.array(np.arange(chunk.first_row, chunk.first_row + len(chunk)),
                                     pa.int64()),
                "ad_id": pa.array(chunk.ad_ids, pa.string()),
                "text": pa.array(chunk.texts, pa.string()),
                "metadata": pa.array(chunk.metadata, pa.string()),
            },
            schema=ADS_SCHEMA,
        )
        self._atomic(self._path(chunk.number, ".npy"),
                     lambda f: np.save(f, vectors, allow_pickle=False))
        self._atomic(self._path(chunk.number, ".parquet"), lambda f: pq.write_table(rows, f))
        info = ShardInfo(chunk.number, len(chunk), truncated)
        summary = json.dumps({"rows": info.rows, "truncated": truncated}).encode()
        self._atomic(self._path(chunk.number, ".json"), lambda f: f.write(summary))
        return info

    def info(self, number: int) -> ShardInfo | None:
        """The shard's summary if it is complete, else ``None``."""
        fs, _ = self._fs
        marker = self._path(number, ".json")
        if not fs.exists(marker):
            return None
        data = json.loads(fs.cat_file(marker))
        return ShardInfo(number, int(data["rows"]), int(data["truncated"]))

    def vectors(self, number: int) -> np.ndarray:
        """A shard's vectors (memory-mapped from a local store)."""
        fs, _ = self._fs
        path = self._path(number, ".npy")
        if self.is_local():
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return np.load(io.BytesIO(fs.cat_file(path)), allow_pickle=False)

    def rows(self, number: int) -> pa.Table:
        """A shard's rows (faiss_id, ad_id, text, metadata)."""
        fs, _ = self._fs
        with fs.open(self._path(number, ".parquet"), "rb") as f:
            return pq.read_table(f, schema=ADS_SCHEMA)

    def put(self, name: str, data: bytes) -> None:
        """Write the file ``name`` beside the shards (atomically): what every worker reads."""
        self._atomic(f"{self._fs[1]}/{name}", lambda f: f.write(data))

    def get(self, name: str) -> bytes:
        """The file ``name`` that :meth:`put` wrote (``FileNotFoundError`` if this process
        cannot see it)."""
        fs, root = self._fs
        return fs.cat_file(f"{root}/{name}")

    def delete(self, name: str) -> None:
        """Remove the file ``name`` that :meth:`put` wrote."""
        fs, root = self._fs
        fs.rm(f"{root}/{name}")

    def mark_attempt(self, number: int) -> None:
        """Record that this process started chunk ``number`` (named by host and process id)."""
        fs, _ = self._fs
        token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        fs.pipe_file(self._path(number, f"{ATTEMPT_TAG}{token}"), b"")

    def attempts(self) -> dict[int, list[str]]:
        """The attempt files of every chunk, by chunk number (listed afresh, not from a cache)."""
        fs, root = self._fs
        fs.invalidate_cache(root)
        pattern = re.compile(rf"shard-(\d+)-{self.key}{re.escape(ATTEMPT_TAG)}")
        found: dict[int, list[str]] = {}
        for name in fs.ls(root, detail=False) if fs.exists(root) else []:
            base = name.rsplit("/", 1)[-1]
            match = pattern.match(base)
            if match:
                found.setdefault(int(match.group(1)), []).append(base)
        return found

    def forget_attempts(self, numbers: set[int]) -> None:
        """Delete the attempt files of chunks ``numbers`` (a killed run's unfinished ones)."""
        fs, root = self._fs
        for number, names in self.attempts().items():
            if number in numbers:
                fs.rm([f"{root}/{name}" for name in names])

    def _atomic(self, path: str, write: Callable[[IO[bytes]], object]) -> None:
        fs, _ = self._fs
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with fs.open(temporary, "wb") as f:
            write(f)
        fs_step(f"wrote {temporary}")
        fs.mv(temporary, path)
        fs_step(f"renamed {temporary} to {path}")


def unfinished_chunks(chunks: Iterable[AdChunk], store: ShardStore, finished: list[ShardInfo],
                      bar: tqdm) -> Iterator[AdChunk]:
    """The chunks without a complete shard in ``store``; the others are added to ``finished``
    and to the progress ``bar``, so a resumed build counts them without encoding them."""
    for chunk in chunks:
        info = store.info(chunk.number)
        if info is None:
            yield chunk
        else:
            finished.append(info)
            bar.update(info.rows)


def embed_chunk(chunk: AdChunk, encoder: Encoder, batch_size: int) -> tuple[np.ndarray, int]:
    """Vectors of a chunk's texts and how many texts were truncated."""
    result = encoder.encode_batch(chunk.texts, batch_size=batch_size)
    return result.vectors, result.truncated
