"""Evaluation of graded relevance scores: Spearman, Pearson, MSE and nDCG@k per query.

Plain numpy/pandas (no scipy at run time); the tests check Spearman against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rerank.config import METRICS  # noqa: F401  (re-exported: names of the dev metrics)

PRIMARY_METRIC = "spearman"
LOWER_IS_BETTER = frozenset({"mse"})


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} predictions but {len(y)} labels")
    if len(x) < 2:
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return float(xc @ yc) / denom if denom > 0 else math.nan


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties, as scipy.stats.spearmanr)."""
    rx = pd.Series(np.asarray(x, dtype=np.float64)).rank(method="average").to_numpy()
    ry = pd.Series(np.asarray(y, dtype=np.float64)).rank(method="average").to_numpy()
    return pearson(rx, ry)


def mse(pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error."""
    pred = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    return float(np.mean((pred - labels) ** 2)) if len(pred) else math.nan


def ndcg_at_k(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """nDCG@k of one query's candidates with linear gains (gain = label); NaN if no gain."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.sort(labels)[::-1][:k]
    idcg = float(ideal @ discounts[: len(ideal)])
    if idcg <= 0:
        return math.nan
    order = np.argsort(-scores, kind="stable")[:k]
    return float(labels[order] @ discounts[: len(order)]) / idcg


def mean_ndcg_by_query(
    queries: Sequence[str], scores: np.ndarray, labels: np.ndarray, k: int = 10
) -> tuple[float, int]:
    """Mean nDCG@k over query groups that have at least one relevant candidate.

    Returns ``(mean, number_of_queries_counted)``; queries whose candidates all have label 0
    carry no ranking signal and are left out.
    """
    frame = pd.DataFrame({"q": list(queries), "s": scores, "y": labels})
    values = [
        ndcg_at_k(group["s"].to_numpy(), group["y"].to_numpy(), k)
        for _, group in frame.groupby("q", sort=False)
    ]
    counted = [v for v in values if not math.isnan(v)]
    return (float(np.mean(counted)) if counted else math.nan), len(counted)


def evaluate_scores(
    queries: Sequence[str], scores: np.ndarray, labels: np.ndarray, k: int = 10
) -> dict[str, float]:
    """Metrics dict: spearman (primary), pearson, mse, ndcg@k and how many queries counted."""
    ndcg, counted = mean_ndcg_by_query(queries, scores, labels, k)
    return {
        "spearman": spearman(scores, labels),
        "pearson": pearson(scores, labels),
        "mse": mse(scores, labels),
        f"ndcg@{k}": ndcg,
        f"ndcg@{k}_queries": counted,
    }


def is_better(metric: str, new: float, best: float | None) -> bool:
    """Whether ``new`` beats ``best`` for ``metric`` (NaN never does; any value beats None)."""
    if new is None or math.isnan(new):
        return False
    if best is None or math.isnan(best):
        return True
    return new < best if metric in LOWER_IS_BETTER else new > best
