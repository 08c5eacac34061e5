"""A chunk's work as plain functions: encode it, write its shard, read shards back.

A shard is three files in a shard store: ``shard-NNNNNN.npy`` (float32 vectors),
``shard-NNNNNN.parquet`` (faiss_id, ad_id, text, metadata) and ``shard-NNNNNN.json`` (row count
and truncations), written last as the mark that the shard is complete. Each file is written to
a temporary name of its own and renamed, so a killed job never leaves a half shard that looks
whole, and two attempts at one chunk (a worker presumed dead that is still running) never write
into the same temporary file. A store is a local folder (the build's checkpoint) or any fsspec
URL, so workers of a cluster can write shards where the merging client reads them. The
functions take everything as arguments, so a distributed engine runs the same ones per chunk.
"""

from __future__ import annotations

import io
import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from index_build.ad_source import AdChunk
from retrieval.encoder import Encoder
from retrieval.folder_swap import fs_step
from retrieval.index_store import ADS_SCHEMA

ATTEMPT_TAG = ".attempt-"
"""An attempt file ``shard-NNNNNN.attempt-HOST-PID-XXXX`` says a cluster worker started a chunk."""


@dataclass(frozen=True)
class ShardInfo:
    """What a completed shard holds."""

    number: int
    rows: int
    truncated: int


@dataclass(frozen=True)
class ShardStore:
    """A folder of shards: a local path or an fsspec URL (``file://``, ``s3://``, ...)."""

    location: str

    @classmethod
    def at(cls, location: str | Path) -> ShardStore:
        return cls(str(location))

    @property
    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.location)
        return fs, root.rstrip("/")

    def _path(self, number: int, suffix: str) -> str:
        root = self._fs[1]
        return f"{root}/shard-{number:06d}{suffix}"

    def is_local(self) -> bool:
        return isinstance(self._fs[0], LocalFileSystem)

    def create(self) -> None:
        """Make the store's folder; refuse one that already holds files (another build's)."""
        fs, root = self._fs
        if fs.exists(root) and fs.ls(root, detail=False):
            raise ValueError(
                f"the shard store {self.location} is not empty; give a new or empty folder, or "
                "delete what is in it"
            )
        fs.makedirs(root, exist_ok=True)

    def remove(self) -> None:
        """Delete the store and every shard in it (after the index is safely in place)."""
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
        fs, root = self._fs
        return fs.cat_file(f"{root}/{name}")

    def delete(self, name: str) -> None:
        fs, root = self._fs
        fs.rm(f"{root}/{name}")

    def mark_attempt(self, number: int) -> None:
        """Record that this process started chunk ``number`` (named by host and process id)."""
        fs, _ = self._fs
        token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        fs.pipe_file(self._path(number, f"{ATTEMPT_TAG}{token}"), b"")

    def attempts(self) -> dict[int, list[str]]:
        """The attempt files of every chunk, by chunk number."""
        fs, root = self._fs
        found: dict[int, list[str]] = {}
        for name in fs.ls(root, detail=False) if fs.exists(root) else []:
            base = name.rsplit("/", 1)[-1]
            if base.startswith("shard-") and ATTEMPT_TAG in base:
                found.setdefault(int(base[6:12]), []).append(base)
        return found

    def forget_attempts(self, numbers: set[int]) -> None:
        """Delete the attempt files of chunks ``numbers`` (a killed run's unfinished ones)."""
        fs, root = self._fs
        for number, names in self.attempts().items():
            if number in numbers:
                fs.rm([f"{root}/{name}" for name in names])

    def _atomic(self, path: str, write: Callable[[IO[bytes]], object]) -> None:
        fs, _ = self._fs
        stem, dot, suffix = path.rpartition(".")
        temporary = f"{stem}.tmp-{uuid.uuid4().hex[:8]}{dot}{suffix}"
        with fs.open(temporary, "wb") as f:
            write(f)
        fs_step(f"wrote {temporary}")
        fs.mv(temporary, path)
        fs_step(f"renamed {temporary} to {path}")


def embed_chunk(chunk: AdChunk, encoder: Encoder, batch_size: int) -> tuple[np.ndarray, int]:
    """Vectors of a chunk's texts and how many texts were truncated."""
    result = encoder.encode_batch(chunk.texts, batch_size=batch_size)
    return result.vectors, result.truncated
