"""Weighted fusion of first-stage and rerank scores, and the choice of its weight on dev data.

``fused = w × minmax(first_stage) + (1 − w) × minmax(rerank)``, each min-max scaled over one
query's candidates, so the two scales (cosine, BM25, BertSim's 0–2) need no calibration. ``w =
0`` is the rerank order alone and ``w = 1`` the first stage's. A query whose candidates all
share one score contributes 0 from that side. Pure functions of numpy arrays: the retriever
fuses with them at search time, BertSim training picks ``w`` with them on dev pairs.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

FUSIONS = ("rerank", "weighted")
"""``rerank``: order by the rerank score; ``weighted``: by :func:`fuse` with a stored weight."""

WEIGHT_GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))


def minmax(scores: np.ndarray) -> np.ndarray:
    """``scores`` scaled to [0, 1]; all zeros when they are all equal."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, span = scores.min(), np.ptp(scores)
    return (scores - low) / span if span > 0 else np.zeros_like(scores)


def fuse(first_stage: np.ndarray, rerank: np.ndarray, weight: float) -> np.ndarray:
    """Fused scores of one query's candidates (see the module docstring)."""
    check_weight(weight)
    first_stage, rerank = np.asarray(first_stage), np.asarray(rerank)
    if first_stage.shape != rerank.shape:
        raise ValueError(
            f"{first_stage.shape[0]} first-stage scores but {rerank.shape[0]} rerank scores; "
            "give one of each per candidate"
        )
    return weight * minmax(first_stage) + (1.0 - weight) * minmax(rerank)


def fuse_by_query(
    queries: Sequence[str], first_stage: np.ndarray, rerank: np.ndarray, weight: float
) -> np.ndarray:
    """:func:`fuse` applied within each query's rows of flat, parallel arrays."""
    first_stage, rerank = np.asarray(first_stage), np.asarray(rerank)
    out = np.empty(len(queries), dtype=np.float64)
    rows: dict[str, list[int]] = {}
    for i, query in enumerate(queries):
        rows.setdefault(query, []).append(i)
    for idx in rows.values():
        out[idx] = fuse(first_stage[idx], rerank[idx], weight)
    return out


def choose_weight(
    queries: Sequence[str],
    first_stage: np.ndarray,
    rerank: np.ndarray,
    metric: Callable[[np.ndarray], float],
    grid: Sequence[float] = WEIGHT_GRID,
) -> tuple[float, dict[float, float]]:
    """The weight of ``grid`` whose fused scores ``metric`` rates highest (ties: the smaller
    weight, i.e. more rerank), and the metric at every weight."""
    values = {float(w): float(metric(fuse_by_query(queries, first_stage, rerank, w))) for w in grid}
    best = max(values, key=lambda w: (values[w], -w))
    return best, values


def check_weight(weight: object) -> float:
    """``weight`` as a float if it is a real number in [0, 1]; a non-number is a TypeError."""
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise TypeError(f"fusion weight must be a number in [0, 1], got {type(weight).__name__} "
                        f"{weight!r}")
    if not 0 <= float(weight) <= 1:
        raise ValueError(f"fusion weight must be a number in [0, 1], got {weight!r}")
    return float(weight)
