"""A chunk's work as plain functions: encode it, write its shard, read shards back.

A shard is three files in a checkpoint directory: ``shard-NNNNNN.npy`` (float32 vectors),
``shard-NNNNNN.parquet`` (faiss_id, ad_id, text, metadata) and ``shard-NNNNNN.json`` (row count
and truncations), written last as the mark that the shard is complete. Each file is written to
a temporary name and renamed, so a killed job never leaves a half shard that looks whole. These
functions take everything as arguments, so a distributed engine can run them per chunk.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index_build.ad_source import AdChunk
from retrieval.encoder import Encoder
from retrieval.folder_swap import fs_step
from retrieval.index_store import ADS_SCHEMA


@dataclass(frozen=True)
class ShardInfo:
    """What a completed shard holds."""

    number: int
    rows: int
    truncated: int


def shard_stem(directory: Path, number: int) -> Path:
    return directory / f"shard-{number:06d}"


def embed_chunk(chunk: AdChunk, encoder: Encoder, batch_size: int) -> tuple[np.ndarray, int]:
    """Vectors of a chunk's texts and how many texts were truncated."""
    result = encoder.encode_batch(chunk.texts, batch_size=batch_size)
    return result.vectors, result.truncated


def write_shard(directory: Path, chunk: AdChunk, vectors: np.ndarray, truncated: int) -> ShardInfo:
    """Write one chunk's vectors and rows; faiss ids are the ads' data row numbers."""
    if len(vectors) != len(chunk):
        raise ValueError(f"chunk {chunk.number} has {len(chunk)} ads but {len(vectors)} vectors")
    stem = shard_stem(directory, chunk.number)
    rows = pa.table(
        {
            "faiss_id": pa.array(np.arange(chunk.first_row, chunk.first_row + len(chunk)), pa.int64()),
            "ad_id": pa.array(chunk.ad_ids, pa.string()),
            "text": pa.array(chunk.texts, pa.string()),
            "metadata": pa.array(chunk.metadata, pa.string()),
        },
        schema=ADS_SCHEMA,
    )
    _atomic(stem.with_suffix(".npy"), lambda p: np.save(p, vectors, allow_pickle=False))
    _atomic(stem.with_suffix(".parquet"), lambda p: pq.write_table(rows, p))
    info = ShardInfo(chunk.number, len(chunk), truncated)
    _atomic(
        stem.with_suffix(".json"),
        lambda p: p.write_text(json.dumps({"rows": info.rows, "truncated": truncated})),
    )
    return info


def read_shard_info(directory: Path, number: int) -> ShardInfo | None:
    """The shard's summary if it is complete, else ``None``."""
    marker = shard_stem(directory, number).with_suffix(".json")
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    return ShardInfo(number, int(data["rows"]), int(data["truncated"]))


def read_shard_vectors(directory: Path, number: int) -> np.ndarray:
    """A shard's vectors, memory-mapped."""
    return np.load(shard_stem(directory, number).with_suffix(".npy"), mmap_mode="r", allow_pickle=False)


def read_shard_rows(directory: Path, number: int) -> pa.Table:
    """A shard's rows (faiss_id, ad_id, text, metadata)."""
    return pq.read_table(shard_stem(directory, number).with_suffix(".parquet"), schema=ADS_SCHEMA)


def _atomic(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    temporary = path.with_name(path.name + ".tmp" + path.suffix)
    write(temporary)
    fs_step(f"wrote {temporary}")
    os.replace(temporary, path)
    fs_step(f"renamed {temporary} to {path}")
