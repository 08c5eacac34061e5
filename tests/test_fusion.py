"""Reciprocal rank fusion: hand-computed scores, weights, depth, ties and bad input."""

from __future__ import annotations

import pytest

from retrieval.fusion import reciprocal_rank_fusion


def test_hand_computed_rrf():
    bm25 = {"q": [("a", 12.0), ("b", 7.0), ("c", 1.0)]}
    dense = {"q": [("c", 0.9), ("a", 0.8)]}
    fused = reciprocal_rank_fusion([bm25, dense], c=60)
    scores = dict(fused["q"])
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert [d for d, _ in fused["q"]] == ["a", "c", "b"]


def test_scores_are_not_mixed_only_ranks():
    # very different score scales give the same fusion as their ranks
    a = {"q": [("x", 1000.0), ("y", 999.0)]}
    b = {"q": [("y", 0.02), ("x", 0.01)]}
    fused = reciprocal_rank_fusion([a, b])
    assert fused["q"][0][1] == pytest.approx(fused["q"][1][1])
    # exact tie: doc id descending, as in the metrics
    assert [d for d, _ in fused["q"]] == ["y", "x"]


def test_weights_depth_and_top_n():
    a = {"q": ["a", "b", "c"]}
    b = {"q": ["c", "b", "a"]}
    fused = reciprocal_rank_fusion([a, b], c=1, weights=[2.0, 1.0])
    assert dict(fused["q"])["a"] == pytest.approx(2 / 2 + 1 / 4)
    assert fused["q"][0][0] == "a"
    shallow = reciprocal_rank_fusion([a, b], c=1, depth=1)
    assert dict(shallow["q"]) == {"a": pytest.approx(0.5), "c": pytest.approx(0.5)}
    assert len(reciprocal_rank_fusion([a, b], top_n=2)["q"]) == 2


def test_queries_from_any_run_appear():
    fused = reciprocal_rank_fusion([{"q1": ["a"]}, {"q2": ["b"]}])
    assert set(fused) == {"q1", "q2"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"c": 0}, "positive"),
        ({"weights": [1.0]}, "weights"),
        ({"weights": [1.0, -1.0]}, "non-negative"),
        ({"depth": 0}, "depth"),
        ({"top_n": 0}, "top_n"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reciprocal_rank_fusion([{"q": ["a"]}, {"q": ["b"]}], **kwargs)
    with pytest.raises(ValueError, match="at least one run"):
        reciprocal_rank_fusion([])
