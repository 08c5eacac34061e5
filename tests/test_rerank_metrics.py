"""Reranker metrics against reference implementations and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rerank.metrics import evaluate_scores, is_better, mean_ndcg_by_query, ndcg_at_k, spearman


def test_spearman_matches_scipy_with_ties() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=200).astype(float)  # many ties, like graded labels
    scores = labels + rng.normal(0, 1, size=200)
    scores[:20] = scores[0]  # ties in the scores too
    assert spearman(scores, labels) == pytest.approx(stats.spearmanr(scores, labels)[0], abs=1e-12)


def test_spearman_of_constant_scores_is_nan() -> None:
    assert math.isnan(spearman(np.ones(5), np.arange(5)))


def test_ndcg_by_hand() -> None:
    # Ranking puts labels [0, 2, 1]; ideal is [2, 1, 0].
    dcg = 0 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(np.array([3.0, 2.0, 1.0]), np.array([0.0, 2.0, 1.0])) == pytest.approx(
        dcg / idcg
    )
    assert ndcg_at_k(np.array([1.0, 2.0]), np.array([1.0, 0.0])) == pytest.approx(1 / math.log2(3))
    assert math.isnan(ndcg_at_k(np.array([1.0, 2.0]), np.zeros(2)))


def test_ndcg_matches_sklearn_when_available() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=25).astype(float)
    scores = rng.normal(size=25)
    expected = metrics.ndcg_score(labels[None], scores[None], k=10)
    assert ndcg_at_k(scores, labels, 10) == pytest.approx(expected)


def test_mean_ndcg_groups_by_query_and_skips_queries_without_relevant() -> None:
    queries = ["a", "a", "b", "b", "c", "c"]
    scores = np.array([2.0, 1.0, 1.0, 2.0, 1.0, 2.0])
    labels = np.array([2.0, 0.0, 2.0, 0.0, 0.0, 0.0])
    mean, counted = mean_ndcg_by_query(queries, scores, labels)
    assert counted == 2
    assert mean == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    metrics = evaluate_scores(queries, scores, labels)
    assert metrics["ndcg@10_queries"] == 2 and metrics["mse"] == pytest.approx(
        np.mean((scores - labels) ** 2)
    )


def test_is_better() -> None:
    assert is_better("spearman", 0.5, None)
    assert is_better("spearman", 0.6, 0.5) and not is_better("spearman", 0.4, 0.5)
    assert is_better("mse", 0.4, 0.5) and not is_better("mse", 0.6, 0.5)
    assert not is_better("spearman", math.nan, 0.1)
