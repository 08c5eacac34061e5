"""Metric tests: hand-computed cases, then agreement with trec_eval (pytrec_eval) and ranx."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from retrieval.metrics import (
    average_precision_at_k,
    evaluate,
    mrr_at_k,
    ndcg_at_k,
    ranked_ids,
    recall_at_k,
    recall_curve,
)

L2 = math.log2


def test_ties_rank_by_doc_id_descending_like_trec_eval():
    assert ranked_ids([("a", 1.0), ("c", 1.0), ("b", 2.0)]) == ["b", "c", "a"]
    assert ranked_ids({"a": 0.5, "b": 0.5, "c": 0.5}) == ["c", "b", "a"]
    # ids compare as strings, as strcmp does: "9" > "10"
    assert ranked_ids([(10, 1.0), (9, 1.0)]) == ["9", "10"]
    # the order a system returned tied docs in is ignored
    assert ranked_ids([("c", 1.0), ("a", 1.0)]) == ranked_ids([("a", 1.0), ("c", 1.0)])
    # bare ids are already a ranking
    assert ranked_ids(["a", "c", "b"]) == ["a", "c", "b"]


def test_ties_change_metrics_as_documented():
    qrels = {"q": {"a": 1}}
    run = {"q": [("a", 1.0), ("b", 1.0), ("c", 1.0)]}  # ranked c, b, a
    result = evaluate(run, qrels, ks=[1, 3])
    assert result.metrics["recall@1"] == 0.0
    assert result.metrics["recall@3"] == 1.0
    assert result.metrics["mrr@10"] == pytest.approx(1 / 3)
    assert result.metrics["ndcg@10"] == pytest.approx(1 / L2(4))


def test_bad_runs_raise_value_errors_naming_the_problem():
    with pytest.raises(ValueError, match="'d'.*more than once"):
        ranked_ids([("d", 1.0), ("d", 0.5)], "q1")
    with pytest.raises(ValueError, match="NaN"):
        ranked_ids([("d", float("nan"))])
    with pytest.raises(ValueError, match="k must be"):
        evaluate({"q": ["a"]}, {"q": {"a": 1}}, ks=[0])
    with pytest.raises(ValueError, match="primary_metric"):
        evaluate({"q": ["a"]}, {"q": {"a": 1}}, primary_metric="p@5")
    with pytest.raises(ValueError, match="gain"):
        evaluate({"q": ["a"]}, {"q": {"a": 1}}, gain="squared")


def test_hand_computed_single_query():
    # ranking: d1 (rel 2), d2 (0), d3 (rel 1), d4 (unjudged); relevant: d1, d3, d5 (rel 3)
    judged = {"d1": 2, "d2": 0, "d3": 1, "d5": 3}
    ranking = ["d1", "d2", "d3", "d4"]
    assert recall_at_k(ranking, judged, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, judged, 3) == pytest.approx(2 / 3)
    assert mrr_at_k(ranking, judged) == 1.0
    assert mrr_at_k(["d2", "d4", "d3"], judged) == pytest.approx(1 / 3)
    assert mrr_at_k(["d2", "d4", "d3"], judged, k=2) == 0.0
    # AP: hits at ranks 1 and 3 -> (1/1 + 2/3) / 3 relevant
    assert average_precision_at_k(ranking, judged) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(ranking, judged, k=2) == pytest.approx(1 / 3)
    dcg = 2 / L2(2) + 1 / L2(4)
    idcg = 3 / L2(2) + 2 / L2(3) + 1 / L2(4)
    assert ndcg_at_k(ranking, judged) == pytest.approx(dcg / idcg)


def test_graded_versus_binary_versus_exponential_gains():
    judged = {"a": 2, "b": 1}
    ranking = ["b", "a"]
    linear = (1 / L2(2) + 2 / L2(3)) / (2 / L2(2) + 1 / L2(3))
    assert ndcg_at_k(ranking, judged, gain="linear") == pytest.approx(linear)
    # binary: both relevant, so any order of the two is ideal
    assert ndcg_at_k(ranking, judged, gain="binary") == pytest.approx(1.0)
    exponential = (1 / L2(2) + 3 / L2(3)) / (3 / L2(2) + 1 / L2(3))
    assert ndcg_at_k(ranking, judged, gain="exponential") == pytest.approx(exponential)
    assert linear < 1.0 and exponential < linear
    # binary with a stricter threshold: only "a" counts
    assert ndcg_at_k(ranking, judged, gain="binary", relevance_threshold=2) == pytest.approx(
        (1 / L2(3)) / 1.0
    )
    # evaluate passes the choice through
    run = {"q": ranking}
    assert evaluate(run, {"q": judged}).metrics["ndcg@10"] == pytest.approx(linear)
    assert evaluate(run, {"q": judged}, gain="binary").metrics["ndcg@10"] == pytest.approx(1.0)


def test_relevance_threshold_changes_what_counts_as_relevant():
    judged = {"a": 1, "b": 2}
    ranking = ["a", "c", "b"]
    assert recall_at_k(ranking, judged, 1) == 0.5
    assert recall_at_k(ranking, judged, 1, relevance_threshold=2) == 0.0
    assert mrr_at_k(ranking, judged, relevance_threshold=2) == pytest.approx(1 / 3)
    strict = evaluate({"q": ranking}, {"q": judged}, ks=[1], relevance_threshold=2)
    assert strict.metrics["recall@1"] == 0.0 and strict.metrics["map@100"] == pytest.approx(1 / 3)


def test_k_larger_than_the_corpus():
    qrels = {"q": {"a": 1, "b": 1}}
    run = {"q": [("a", 0.9), ("x", 0.5), ("b", 0.1)]}  # the whole 3-doc corpus
    result = evaluate(run, qrels, ks=[1, 2, 1000])
    assert result.metrics["recall@1"] == 0.5
    assert result.metrics["recall@2"] == 0.5
    assert result.metrics["recall@1000"] == 1.0
    assert result.metrics["map@100"] == pytest.approx((1 + 2 / 3) / 2)
    curve = recall_curve(run, qrels, max_k=5)
    np.testing.assert_allclose(curve, [0.5, 0.5, 1.0, 1.0, 1.0])
    # more relevant docs than k: recall@1 can be at most 1/3, nDCG@10 ideal uses them all
    qrels = {"q": {"a": 1, "b": 1, "c": 1}}
    result = evaluate({"q": ["a"]}, qrels, ks=[1])
    assert result.metrics["recall@1"] == pytest.approx(1 / 3)
    assert result.metrics["ndcg@10"] == pytest.approx(1 / (1 + 1 / L2(3) + 1 / L2(4)))


def test_query_with_nothing_relevant_is_excluded_and_counted():
    qrels = {
        "q1": {"a": 1},
        "q2": {"b": 0, "c": 0},  # judged, nothing relevant
        "q3": {"d": 2},  # relevant, but the system returned nothing: scores 0
    }
    run = {
        "q1": [("a", 1.0)],
        "q2": [("b", 1.0)],
        "q4": [("e", 1.0)],  # not in the qrels at all
    }
    result = evaluate(run, qrels, ks=[1, 10])
    assert result.n_queries == 2
    assert result.n_excluded == 2
    assert result.excluded_query_ids == ["q2", "q4"]
    assert result.n_missing_from_run == 1
    assert set(result.per_query) == {"q1", "q3"}
    assert result.metrics["recall@1"] == 0.5  # (1 + 0) / 2, q2 and q4 left out
    assert result.metrics["mrr@10"] == 0.5
    assert result.primary_metric == "ndcg@10" and result.primary == 0.5
    assert "excluded (no relevant doc): 2" in result.table()
    assert result.to_dict()["n_excluded"] == 2
    curve = recall_curve(run, qrels, max_k=2)
    np.testing.assert_allclose(curve, [0.5, 0.5])


def test_no_scorable_query_gives_nan_not_an_error():
    result = evaluate({"q": ["a"]}, {"q": {"a": 0}})
    assert result.n_queries == 0 and result.n_excluded == 1
    assert math.isnan(result.metrics["recall@10"])


def test_ids_compare_as_strings():
    result = evaluate({1: [(7, 1.0)]}, {"1": {"7": 1}}, ks=[1])
    assert result.metrics["recall@1"] == 1.0


def _random_case(seed: int, with_ties: bool):
    rng = random.Random(seed)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(40):
        docs = [f"d{i}" for i in range(rng.randint(20, 150))]
        judged = rng.sample(docs, rng.randint(1, 15))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if not any(g > 0 for g in qrels[f"q{q}"].values()):
            qrels[f"q{q}"][judged[0]] = 1
        returned = rng.sample(docs, rng.randint(1, len(docs)))
        if with_ties:
            run[f"q{q}"] = {d: float(rng.randint(0, 5)) for d in returned}
        else:
            run[f"q{q}"] = {d: rng.random() for d in returned}
    return run, qrels


@pytest.mark.parametrize("with_ties", [False, True])
def test_agrees_with_pytrec_eval(with_ties):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    run, qrels = _random_case(7 if with_ties else 3, with_ties)
    ks = [1, 5, 10, 100]
    ours = evaluate(run, qrels, ks=ks)
    measures = {"recall.1,5,10,100", "ndcg_cut.10", "map_cut.100"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # MRR@10 = trec_eval recip_rank on each run cut at rank 10
    cut = {q: {d: r[d] for d in ranked_ids(r)[:10]} for q, r in run.items()}
    ref_rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    for qid, scores in ours.per_query.items():
        for k in ks:
            assert scores[f"recall@{k}"] == pytest.approx(ref[qid][f"recall_{k}"], abs=1e-9)
        assert scores["ndcg@10"] == pytest.approx(ref[qid]["ndcg_cut_10"], abs=1e-9)
        assert scores["map@100"] == pytest.approx(ref[qid]["map_cut_100"], abs=1e-9)
        assert scores["mrr@10"] == pytest.approx(ref_rr[qid]["recip_rank"], abs=1e-9)


@pytest.mark.slow  # ranx imports numba and JIT-compiles: ~6 s warm, ~40 s cold
def test_agrees_with_ranx_without_ties():
    ranx = pytest.importorskip("ranx")
    run, qrels = _random_case(11, with_ties=False)
    ours = evaluate(run, qrels, ks=[1, 10, 100])
    ref = ranx.evaluate(
        ranx.Qrels(qrels),
        ranx.Run(run),
        ["recall@1", "recall@10", "recall@100", "mrr@10", "ndcg@10", "map@100"],
    )
    for name in ("recall@1", "recall@10", "recall@100", "mrr@10", "map@100"):
        assert ours.metrics[name] == pytest.approx(ref[name], abs=1e-9)
    # ranx's ndcg uses linear gains too (its ndcg_burges is the 2**g - 1 variant)
    assert ours.metrics["ndcg@10"] == pytest.approx(ref["ndcg@10"], abs=1e-9)
