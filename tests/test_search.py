"""Search on the real embedded model: exactness against brute force, ANN recall, threads, rerank."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index_build.build_job import build_index
from index_build.sample import sample_ads_path, sample_queries_path
from retrieval.encoder import Encoder
from retrieval.retriever import Hit, Retriever
from tests.conftest import write_table

N_ADS = 1200  # a slice of the sample catalogue: enough neighbourhood structure, quick to embed


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    frame = pd.read_csv(sample_ads_path(), dtype=str, keep_default_na=False)
    # every third ad, so both languages and all industries are in the slice
    return frame.iloc[::3].head(N_ADS).reset_index(drop=True)


@pytest.fixture(scope="module")
def queries() -> list[str]:
    with open(sample_queries_path(), encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


@pytest.fixture(scope="module")
def ads_path(catalogue: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(catalogue, tmp_path_factory.mktemp("ads") / "ads.parquet")


@pytest.fixture(scope="module")
def flat(ads_path: Path, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    out = tmp_path_factory.mktemp("flat") / "idx"
    build_index(ads_path, out, model=encoder, chunk_rows=500, progress=False)
    return Retriever.load(out, model=encoder)


@pytest.fixture(scope="module")
def ad_vectors(catalogue: pd.DataFrame, encoder: Encoder) -> np.ndarray:
    return encoder.encode(catalogue["text"].tolist(), batch_size=64)


@pytest.mark.parametrize(("k", "batch_size"), [(1, 1), (7, 3), (33, 128), (N_ADS + 5, 17)])
def test_flat_search_equals_brute_force_top_k(
    flat: Retriever, catalogue: pd.DataFrame, ad_vectors: np.ndarray, encoder: Encoder,
    queries: list[str], k: int, batch_size: int,
) -> None:
    query_vectors = encoder.encode(queries, batch_size=batch_size)
    scores = query_vectors @ ad_vectors.T
    results = flat.search(queries, k=k, batch_size=batch_size)
    assert len(results) == len(queries)
    for row, hits in enumerate(results):
        expected = np.argsort(-scores[row], kind="stable")[: min(k, N_ADS)]
        np.testing.assert_allclose([h.score for h in hits], scores[row, expected], atol=1e-5)
        expected_ids = catalogue["ad_id"].iloc[expected].tolist()
        by_id = dict(zip(catalogue["ad_id"], scores[row]))
        for position, (hit, want) in enumerate(zip(hits, expected_ids)):
            # ids may differ only where two ads tie (Chinese ads made of unknown characters can
            # embed identically); then the hit's own brute-force score must equal the rank's
            if hit.ad_id != want:
                assert abs(by_id[hit.ad_id] - scores[row, expected[position]]) < 1e-6, position
        if k >= N_ADS:
            assert sorted(h.ad_id for h in hits) == sorted(catalogue["ad_id"])
        assert [h.rank for h in hits] == list(range(1, len(expected) + 1))


def test_hits_carry_text_and_metadata(flat: Retriever, catalogue: pd.DataFrame) -> None:
    hit = flat.search("cheap way to get to Tokyo", k=1)[0]
    row = catalogue.set_index("ad_id").loc[hit.ad_id]
    assert hit.text == row["text"]
    assert hit.metadata == {c: row[c] for c in ("industry", "category", "language", "advertiser")}


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_indexes_keep_recall_on_real_embeddings(
    index_type: str, ads_path: Path, encoder: Encoder, flat: Retriever, queries: list[str],
    tmp_path: Path,
) -> None:
    build_index(ads_path, tmp_path / "idx", model=encoder, index_type=index_type, progress=False)
    approximate = Retriever.load(tmp_path / "idx", model=encoder)
    assert approximate.manifest.index_type == index_type
    exact = flat.search(queries, k=10)
    found = approximate.search(queries, k=10)
    recall = np.mean([len({h.ad_id for h in a} & {h.ad_id for h in e}) / 10 for a, e in zip(found, exact)])
    assert recall >= 0.9, f"{index_type} recall@10 against exact search is {recall:.3f}"


def test_concurrent_readers_get_the_same_results(flat: Retriever, queries: list[str]) -> None:
    expected = [flat.search(q, k=5) for q in queries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda q: flat.search(q, k=5), queries * 3))
    for i, hits in enumerate(got):
        assert [h.ad_id for h in hits] == [h.ad_id for h in expected[i % len(queries)]]


class KeywordReranker:
    """A real reranker object: scores 1 for texts containing the keyword, else 0."""

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword
        self.calls: list[int] = []

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return np.array([float(self.keyword in t.lower()) for t in texts])


def test_reranker_reorders_the_candidates(flat: Retriever, encoder: Encoder) -> None:
    reranker = KeywordReranker("cruise")
    pipeline = Retriever(flat.index, flat.ads, flat.manifest, encoder, reranker=reranker, candidates=50)
    hits = pipeline.search("holiday by the sea", k=10)
    assert reranker.calls == [50]
    assert len(hits) == 10
    scores = [h.rerank_score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.score == h.rerank_score for h in hits)
    ones = [h for h in hits if h.rerank_score == 1.0]
    assert ones and all("cruise" in h.text.lower() for h in ones)
    assert [h.dense_score for h in ones] == sorted((h.dense_score for h in ones), reverse=True)


def test_only_the_top_candidates_are_reranked_and_the_rest_keeps_dense_order(
    flat: Retriever, encoder: Encoder
) -> None:
    reranker = KeywordReranker("cruise")
    pipeline = Retriever(flat.index, flat.ads, flat.manifest, encoder, reranker=reranker,
                         candidates=5)
    dense = flat.search("holiday by the sea", k=12)
    hits = pipeline.search("holiday by the sea", k=12)
    assert reranker.calls == [5]
    assert {h.ad_id for h in hits[:5]} == {h.ad_id for h in dense[:5]}  # reordered among them
    assert [h.ad_id for h in hits[5:]] == [h.ad_id for h in dense[5:]]
    assert all(h.rerank_score is None and h.score == h.dense_score for h in hits[5:])


def test_bad_queries_and_k_are_refused(flat: Retriever) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        flat.search("shoes", k=0)
    with pytest.raises(ValueError, match="row 1 is empty"):
        flat.search(["shoes", ""])
    assert flat.search([], k=3) == []
    assert isinstance(flat.search("shoes", k=2)[0], Hit)


@pytest.mark.parametrize("k", [True, 2.0, "3", None])
def test_k_that_is_not_an_int_is_a_type_error(flat: Retriever, k: object) -> None:
    with pytest.raises(TypeError, match="k must be an integer"):
        flat.search("shoes", k=k)  # type: ignore[arg-type]


def test_a_dict_of_queries_is_refused(flat: Retriever) -> None:
    with pytest.raises(TypeError, match="got dict; pass a list with one query string per row"):
        flat.search({"q1": "running shoes"})  # type: ignore[arg-type]


class NoScore:
    """A reranker object whose ``score`` is not a method."""

    score = "not callable"


@pytest.mark.parametrize("reranker", [NoScore(), KeywordReranker])
def test_reranker_without_callable_score_is_refused_at_load(
    reranker: object, ads_frame: pd.DataFrame, encoder: Encoder, tmp_path: Path
) -> None:
    build_index(write_table(ads_frame, tmp_path / "ads.csv"), tmp_path / "idx", model=encoder,
                progress=False)
    with pytest.raises(TypeError, match="reranker .*(NoScore has no callable score|is the class)"):
        Retriever.load(tmp_path / "idx", model=encoder, reranker=reranker)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rerank_scores_name_the_reranker_and_query(
    flat: Retriever, encoder: Encoder, bad: float
) -> None:
    class Broken(KeywordReranker):
        def score(self, query: str, texts: list[str]) -> np.ndarray:
            scores = super().score(query, texts)
            scores[3] = bad
            return scores

    pipeline = Retriever(flat.index, flat.ads, flat.manifest, encoder, reranker=Broken("x"),
                         candidates=10)
    with pytest.raises(ValueError, match=r"reranker Broken scored (nan|inf) .*'family dentist'"):
        pipeline.search("family dentist", k=5)


class StoredWeightReranker(KeywordReranker):
    """A reranker that stores a fusion weight, as a BertSim trained with its index does."""

    fusion_weight = 0.6


def test_weighted_fusion_orders_by_the_documented_formula(flat: Retriever, encoder: Encoder) -> None:
    from adrecall.score_fusion import fuse

    reranker = StoredWeightReranker("cruise")
    fused = Retriever(flat.index, flat.ads, flat.manifest, encoder, reranker=reranker,
                      candidates=30, fusion="weighted")
    assert fused.fusion_weight == 0.6  # the reranker's stored weight
    hits = fused.search("holiday by the sea", k=30)
    dense = np.array([h.dense_score for h in hits])
    rerank = np.array([h.rerank_score for h in hits])
    expected = fuse(dense, rerank, 0.6)
    assert [h.score for h in hits] == pytest.approx(expected.tolist())
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # weight 1: the dense order back; weight 0: the rerank order
    dense_only = Retriever(flat.index, flat.ads, flat.manifest, encoder, reranker=reranker,
                           candidates=30, fusion="weighted", fusion_weight=1.0)
    assert [h.ad_id for h in dense_only.search("holiday by the sea", k=30)] == [
        h.ad_id for h in flat.search("holiday by the sea", k=30)]


def test_weighted_fusion_needs_a_reranker_and_a_weight(flat: Retriever, encoder: Encoder) -> None:
    def make(**kwargs: object) -> Retriever:
        return Retriever(flat.index, flat.ads, flat.manifest, encoder, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="stores none"):
        make(reranker=KeywordReranker("x"), fusion="weighted")
    with pytest.raises(ValueError, match="give a reranker"):
        make(fusion="weighted", fusion_weight=0.5)
    with pytest.raises(ValueError, match="fusion must be one of"):
        make(reranker=KeywordReranker("x"), fusion="max")
    with pytest.raises(ValueError, match="fusion weight must be"):
        make(reranker=KeywordReranker("x"), fusion="weighted", fusion_weight=2.0)


def test_score_pairs_is_what_the_index_scores(flat: Retriever) -> None:
    hits = flat.search("cheap flights to Tokyo", k=5)
    scores = flat.score_pairs(["cheap flights to Tokyo"] * 5, [h.text for h in hits])
    assert scores == pytest.approx([h.dense_score for h in hits], abs=1e-5)


def test_score_pairs_refuses_what_search_refuses(flat: Retriever) -> None:
    with pytest.raises(TypeError, match="dict"):
        flat.score_pairs({"a": 1}, ["x"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 queries but 1 texts"):
        flat.score_pairs(["red shoes", "blue car"], ["shoe sale"])
    assert flat.score_pairs("red shoes", "shoe sale").shape == (1,)  # a string is one pair
