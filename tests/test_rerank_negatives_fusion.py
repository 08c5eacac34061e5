"""Negatives added to BertSim's training pairs, and the weighted fusion of first-stage and
rerank scores (pure functions; hand-made cases)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from adrecall.hard_negatives import MinedNegatives, text_key
from adrecall.score_fusion import choose_weight, fuse, fuse_by_query, minmax
from rerank import pairs_from_lists
from rerank.negatives import add_negatives


def judged_pairs():  # type: ignore[no-untyped-def]
    return pairs_from_lists(
        ["running shoes", "running shoes", "car loan", "car loan"],
        ["Trail running shoes sale", "Running socks", "Low rate car loans", "Bike helmets"],
        [2, 1, 2, 0],
    )


def test_mined_negatives_never_include_a_text_labelled_for_the_query() -> None:
    pairs = judged_pairs()
    mined = MinedNegatives({
        # the first stage returns the labelled texts (one differently spelt) and new ones
        "running shoes": ["TRAIL RUNNING SHOES  SALE!", "Running socks", "Marathon training plan",
                          "Marathon training plan", "Car loan calculator"],
        "car loan": ["Bike helmets", "Used car dealer"],
    }, {"queries": 2})
    added = add_negatives(pairs, mined=mined)
    new = list(zip(added.pairs.queries[4:], added.pairs.texts[4:], added.pairs.labels[4:]))
    assert new == [("running shoes", "Marathon training plan", 0.0),
                   ("running shoes", "Car loan calculator", 0.0),
                   ("car loan", "Used car dealer", 0.0)]
    assert added.stats["mined"] == 3 and added.stats["rows_after"] == 7
    assert added.stats["mining"] == {"queries": 2}
    labelled = {(q, text_key(t)) for q, t in zip(pairs.queries, pairs.texts)}
    assert not any((q, text_key(t)) in labelled for q, t, _ in new)


def test_random_negatives_come_from_other_queries_and_are_seeded() -> None:
    pairs = judged_pairs()
    first = add_negatives(pairs, random_per_query=1, seed=5)
    again = add_negatives(pairs, random_per_query=1, seed=5)
    assert first.pairs.texts == again.pairs.texts
    assert first.stats["random"] == 2
    for query, text in zip(first.pairs.queries[4:], first.pairs.texts[4:]):
        own = {t for q, t in zip(pairs.queries, pairs.texts) if q == query}
        assert text not in own
    assert np.all(first.pairs.labels[4:] == 0.0)
    with pytest.raises(ValueError, match="random_per_query"):
        add_negatives(pairs, random_per_query=-1)


def test_weighted_fusion_orders_as_documented() -> None:
    first = np.array([0.9, 0.5, 0.1])      # first stage prefers a
    rerank = np.array([0.0, 1.0, 2.0])     # the reranker prefers c
    assert np.argsort(-fuse(first, rerank, 0.0)).tolist() == [2, 1, 0]  # rerank alone
    assert np.argsort(-fuse(first, rerank, 1.0)).tolist() == [0, 1, 2]  # first stage alone
    # w = 0.7: a = 0.7·1 + 0.3·0 = 0.7; b = 0.7·0.5 + 0.3·0.5 = 0.5; c = 0 + 0.3 = 0.3
    assert fuse(first, rerank, 0.7) == pytest.approx([0.7, 0.5, 0.3])
    assert minmax(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="fusion weight"):
        fuse(first, rerank, 1.5)
    with pytest.raises(ValueError, match="3 first-stage scores but 2"):
        fuse(first, rerank[:2], 0.5)


def test_fusion_is_per_query_and_the_chosen_weight_is_the_best_on_dev() -> None:
    queries = ["q1", "q1", "q2", "q2"]
    first = np.array([1.0, 0.0, 100.0, 50.0])   # q2 on another scale: min-max per query
    rerank = np.array([0.0, 2.0, 0.0, 2.0])
    assert fuse_by_query(queries, first, rerank, 1.0).tolist() == [1.0, 0.0, 1.0, 0.0]
    # the first stage is right on both queries: row 0 over row 1, row 2 over row 3
    def hits(scores: np.ndarray) -> float:
        return float(scores[0] > scores[1]) + float(scores[2] > scores[3])

    weight, values = choose_weight(queries, first, rerank, hits)
    assert values[0.0] == 0 and values[1.0] == 2
    # at 0.5 the two sides tie; the smallest weight that gets both right wins
    assert weight == min(w for w, v in values.items() if v == 2) == 0.55


class FakeFirstStage:
    """A first stage over a fixed catalogue: word overlap ranks, and scores pairs."""

    def __init__(self, catalogue: list[str]) -> None:
        self.catalogue = catalogue

    def score_pairs(self, queries: list[str], texts: list[str]) -> np.ndarray:
        return np.array([len(set(q.split()) & set(t.split())) for q, t in zip(queries, texts)],
                        dtype=np.float32)

    def search(self, queries: list[str], k: int = 10) -> list[list[object]]:
        from types import SimpleNamespace

        results = []
        for query in queries:
            scores = self.score_pairs([query] * len(self.catalogue), self.catalogue)
            order = np.argsort(-scores, kind="stable")[:k]
            results.append([SimpleNamespace(text=self.catalogue[i], ad_id=str(i)) for i in order])
        return results

    def describe(self) -> dict:
        return {"index": "fake", "count": len(self.catalogue)}


def test_model_trained_with_its_first_stage_records_negatives_and_fusion(
    tiny_model_dir, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    import json

    from conftest import TINY_WORDS

    from rerank import BertSim, TrainConfig, train_reranker

    catalogue = [f"{a} {b}" for a in TINY_WORDS[:8] for b in TINY_WORDS[8:]]
    queries = [f"{w} sale" for w in TINY_WORDS[:6]]
    train = pairs_from_lists(
        [q for q in queries for _ in range(2)],
        [t for w in TINY_WORDS[:6] for t in (f"{w} red sale", "pizza bike")],
        [2, 0] * 6,
    )
    config = TrainConfig(epochs=1, batch_size=4, max_length=16,
                         encoder_lr=1e-3, progress=False, checkpoint_every=0,
                         mined_negatives=3, mining_candidates=10, random_negatives=1)
    result = train_reranker(train, tmp_path / "out", model=tiny_model_dir, dev=train,
                            config=config, first_stage=FakeFirstStage(catalogue))
    assert result.out == str(tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    negatives = manifest["training"]["negatives"]
    assert negatives["mined"] == 3 * 6 and negatives["random"] == 6
    assert negatives["rows_after"] == 12 + 18 + 6
    assert manifest["training"]["first_stage"] == {"index": "fake", "count": len(catalogue)}
    fusion = manifest["fusion"]
    assert fusion["first_stage"]["index"] == "fake"
    assert fusion["dev_ndcg@10_by_weight"][f"{fusion['weight']:g}"] == max(
        fusion["dev_ndcg@10_by_weight"].values())
    assert BertSim.load(result.out).fusion_weight == fusion["weight"]


def test_mined_negatives_without_a_first_stage_are_refused(tiny_model_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rerank import TrainConfig, train_reranker

    config = TrainConfig(progress=False, mined_negatives=2)
    with pytest.raises(ValueError, match="needs the first stage"):
        train_reranker(judged_pairs(), tmp_path / "out", model=tiny_model_dir, config=config)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="mining_candidates"):
        TrainConfig(mined_negatives=40, mining_candidates=30)


def test_fusion_weight_takes_any_real_number_and_refuses_other_types() -> None:
    from adrecall.score_fusion import check_weight

    assert check_weight(np.float32(0.5)) == 0.5 and check_weight(1) == 1.0
    for bad in ("0.5", None, True):
        with pytest.raises(TypeError, match="fusion weight"):
            check_weight(bad)
    with pytest.raises(ValueError, match="fusion weight"):
        check_weight(-0.1)


def test_train_reranker_out_inside_its_index_is_refused_before_loading(
    tmp_path, capsys  # type: ignore[no-untyped-def]
) -> None:
    from adrecall.cli import main

    index = tmp_path / "idx"
    index.mkdir()
    train = tmp_path / "train.csv"
    train.write_text("query,text,label\nred shoes,red shoe sale,2\n", encoding="utf-8")
    status = main(["train-reranker", "--train", str(train), "--index", str(index),
                   "--out", str(index / "bertsim"), "--quiet"])
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and "sits inside the input" in error, error
    assert os.listdir(index) == []
