"""The vectors of the index scale benchmark: real MiniLM embeddings tiled with noise to 1M.

``REAL_TEXTS`` unique real texts are embedded with the default encoder (all-MiniLM-L6-v2,
normalised text, unit vectors): the English STS-B sentences (train, dev, test; both columns)
first, then :func:`benchmarks.hybrid_search.cost_texts` (QBQTC titles and queries, Cranfield,
Chinese sentence pairs), deduplicated. ``QUERY_TEXTS`` further texts of the same pool, never
indexed, are the queries. The catalogue is tiled to ``count`` vectors: copy 0 is the real
vectors, copy c ≥ 1 is ``normalise(x + N(0, NOISE² I))`` with its own seed (NOISE = 0.025 per
dimension: cosine about 0.9 to the original), so near-duplicates exist, as in an ad catalogue,
without exact ones. Cached as .npy under ``/tmp/adrecall-scale/`` (outside the repository).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from benchmarks.datasets import datasets_root
from benchmarks.hybrid_search import cost_texts

CACHE = Path("/tmp/adrecall-scale")
REAL_TEXTS = 50_000
QUERY_TEXTS = 1_000
NOISE = 0.025
TILE_BATCH = 50_000


def real_texts(n: int) -> list[str]:
    """``n`` unique real texts, English STS-B sentences first."""
    texts: list[str] = []
    for split in ("train", "dev", "test"):
        path = datasets_root() / "stsb_en" / f"sts-{split}.csv"
        with open(path, encoding="utf-8") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                texts += [t for t in row[5:7] if t.strip()]
    texts += cost_texts(n)
    unique = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if len(unique) < n:
        raise RuntimeError(f"only {len(unique)} unique real texts under {datasets_root()}, "
                           f"{n} wanted")
    return unique[:n]


def real_vectors(threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue vectors, query vectors) of the real texts, embedded once and cached."""
    base, queries = CACHE / "real.npy", CACHE / "queries.npy"
    if not base.is_file() or not queries.is_file():
        from retrieval.encoder import Encoder

        CACHE.mkdir(parents=True, exist_ok=True)
        texts = real_texts(REAL_TEXTS + QUERY_TEXTS)
        rng = np.random.default_rng(0)
        order = rng.permutation(len(texts))  # queries drawn from the whole pool
        encoder = Encoder(backend="torch", threads=threads)
        vectors = encoder.encode([texts[i] for i in order], batch_size=128)
        np.save(CACHE / "queries.tmp.npy", vectors[:QUERY_TEXTS])
        np.save(CACHE / "real.tmp.npy", vectors[QUERY_TEXTS:])
        (CACHE / "queries.tmp.npy").rename(queries)
        (CACHE / "real.tmp.npy").rename(base)
    return np.load(base), np.load(queries)


def tiled_vectors(count: int) -> np.ndarray:
    """``count`` catalogue vectors (memory-mapped from the cache), tiled as the module says."""
    path = CACHE / f"tiled-{count}.npy"
    if not path.is_file():
        real, _ = real_vectors()
        out = np.lib.format.open_memmap(CACHE / f"tiled-{count}.tmp.npy", mode="w+",
                                        dtype=np.float32, shape=(count, real.shape[1]))
        for start in range(0, count, TILE_BATCH):
            rows = np.arange(start, min(count, start + TILE_BATCH))
            copy, source = rows // len(real), rows % len(real)
            block = real[source].copy()
            noisy = copy > 0
            for c in np.unique(copy[noisy]):
                picked = copy == c
                noise = np.random.default_rng(int(c)).normal(
                    0, NOISE, size=(int(picked.sum()), real.shape[1]))
                block[picked] += noise.astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[rows] = block
        out.flush()
        del out
        (CACHE / f"tiled-{count}.tmp.npy").rename(path)
    return np.load(path, mmap_mode="r")


if __name__ == "__main__":
    import sys

    tiled_vectors(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    print("cached under", CACHE)
