"""Offline teachers for distillation and the cache of their corpus embeddings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from domain_adapt.config import TEACHERS

Teacher = Callable[[list[str]], np.ndarray]
"""A teacher: texts in, one embedding row per text out (float array ``(n, d)``)."""


def load_teacher(name: str, threads: int = 2, batch_size: int = 256) -> Teacher:
    """A named offline teacher; ``"use-multilingual"``: USE multilingual v3 (512-d)."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose one of {TEACHERS}")
    from domain_adapt.use_teacher import USEEncoder

    encoder = USEEncoder(threads=threads, batch_size=batch_size)
    return encoder.encode


def teacher_embeddings(
    texts: list[str], teacher: Teacher, name: str, cache: Path | None
) -> tuple[np.ndarray, float]:
    """The teacher's float32 embeddings of ``texts`` (from ``cache`` when it matches) and the
    seconds spent computing them (0 when cached)."""
    from domain_adapt.corpus import texts_sha256

    digest = texts_sha256(texts)
    meta_path = cache.with_suffix(".json") if cache is not None else None
    if cache is not None and cache.is_file() and meta_path is not None and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("texts_sha256") == digest and meta.get("teacher") == name:
            vectors = np.load(cache, allow_pickle=False)
            if vectors.shape[0] == len(texts):
                return vectors.astype(np.float32, copy=False), 0.0
    started = time.perf_counter()
    vectors = np.asarray(teacher(list(texts)), dtype=np.float32)
    seconds = time.perf_counter() - started
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(
            f"the teacher returned an array of shape {vectors.shape} for {len(texts)} texts; "
            "it must return one row per text"
        )
    if not np.isfinite(vectors).all():
        raise ValueError("the teacher returned NaN or infinite values")
    if cache is not None and meta_path is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npy")
        np.save(tmp, vectors, allow_pickle=False)
        tmp.replace(cache)
        meta_path.write_text(json.dumps({
            "teacher": name, "texts": len(texts), "texts_sha256": digest,
            "dimension": int(vectors.shape[1]), "seconds": round(seconds, 2),
        }, indent=2), encoding="utf-8")
    return vectors, seconds


def default_teacher_cache(out: str | Path, name: str) -> Path:
    """``OUT.teacher-NAME.npy`` beside the output folder."""
    out = Path(out)
    return out.with_name(f"{out.name}.teacher-{name}.npy")
