"""Encoder training: labelled pairs, hard-negative mining, MNRL rows, `adrecall train-encoder`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adrecall.cli import main
from adrecall.folders import FolderError
from adrecall.hard_negatives import mine_hard_negatives, text_key
from encoder_training.finetune import TRAINING_FILE, TrainEncoderConfig, train_encoder
from encoder_training.pairs import (
    PairColumns,
    Pairs,
    PairsError,
    pairs_from_lists,
    read_pairs,
    split_by_query,
)
from encoder_training.tiny_model import make_tiny_model
from encoder_training.training_rows import mnrl_rows
from index_build.build_job import build_index
from retrieval.encoder import Encoder
from retrieval.retriever import Retriever

TOPICS = {
    "cheap flights": ["Cheap flights to Tokyo, book today", "Low cost airline tickets to Osaka",
                      "Last minute flight deals to Seoul"],
    "learn python": ["Learn Python programming online", "Python course for beginners",
                     "Data science bootcamp with Python"],
    "car insurance": ["Car insurance quotes in minutes", "Compare motor insurance prices",
                      "Cheap auto insurance for new drivers"],
    "running shoes": ["Running shoes sale, lightweight trainers", "Marathon trainers half price",
                      "Trail running shoes for mountains"],
    "pizza delivery": ["Fresh pizza delivered hot in 30 minutes", "Order pizza online tonight",
                       "Italian pizza takeaway near you"],
}
FILLER = [f"{w} {n}" for w in ("garden furniture", "office chairs", "dog food", "yoga mats",
                                 "wedding photos", "piano lessons", "solar panels") for n in range(5)]


def _labelled() -> Pairs:
    """Per topic: the first two ads relevant (2, 1), the third labelled irrelevant (0)."""
    q, t, y = [], [], []
    for query, ads in TOPICS.items():
        for ad, label in zip(ads, (2, 1, 0)):
            q.append(query)
            t.append(ad)
            y.append(label)
    return pairs_from_lists(q, t, y, source="topics")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def ads_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~50 ads: every topic ad, exact duplicates (other id, other case/punctuation) of the
    relevant ones, and filler."""
    texts = [ad for ads in TOPICS.values() for ad in ads]
    dups = [ads[0].upper() + "!!" for ads in TOPICS.values()] + [ads[1] + " ..." for ads in TOPICS.values()]
    texts = texts + dups + FILLER
    path = tmp_path_factory.mktemp("ads") / "ads.csv"
    pd.DataFrame({"ad_id": [f"a{i:03d}" for i in range(len(texts))], "text": texts}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def real_index(ads_table: Path, tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    build_index(ads_table, out, model=encoder, progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_index(ads_table: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tidx") / "index"
    build_index(ads_table, out, model=str(tiny_model), progress=False)
    return out


# ---------------------------------------------------------------- pairs


def test_read_pairs_and_split_by_query(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    pairs = _labelled()
    pd.DataFrame({"q": pairs.queries, "ad": pairs.texts, "grade": pairs.labels}).to_json(
        path, orient="records", lines=True, force_ascii=False
    )
    read = read_pairs(path, PairColumns("q", "ad", "grade"))
    assert read.queries == pairs.queries and read.labels.tolist() == pairs.labels.tolist()
    train, dev = split_by_query(read, 0.4, seed=0)
    assert set(train.queries).isdisjoint(dev.queries)
    assert len(train) + len(dev) == len(read) and len(set(dev.queries)) == 2


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"query": ["a"], "text": ["b"]}), r"missing column\(s\) \['label'\]"),
        (pd.DataFrame({"query": ["a", "c"], "text": ["b", "d"], "label": ["1", "high"]}),
         "data row 2 label 'high' in column 'label' is not a number"),
        (pd.DataFrame({"query": ["a", " "], "text": ["b", "d"], "label": [1, 0]}),
         "data row 2 column 'query' is empty"),
    ],
)
def test_bad_pairs_are_refused_naming_the_row(tmp_path: Path, frame: pd.DataFrame, message: str) -> None:
    path = tmp_path / "pairs.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(PairsError, match=message):
        read_pairs(path)


def test_text_key_treats_case_punctuation_and_spacing_as_duplicates() -> None:
    assert text_key("Cheap flights to Tokyo, book today") == text_key("CHEAP FLIGHTS TO TOKYO  BOOK TODAY!!")
    assert text_key("Cheap flights") != text_key("Cheap flight")


# ---------------------------------------------------------------- hard negatives


def _assert_no_relevant(mined: dict[str, list[str]], pairs: Pairs) -> None:
    relevant = {q: {text_key(t) for t in ts} for q, ts in pairs.relevant_texts().items()}
    for query, negatives in mined.items():
        for negative in negatives:
            assert text_key(negative) not in relevant[query], (query, negative)


def test_mined_hard_negatives_never_contain_a_labelled_relevant_ad(real_index: Path, encoder: Encoder) -> None:
    pairs = _labelled()
    retriever = Retriever.load(real_index, model=encoder)
    mined = mine_hard_negatives(retriever, pairs, n_negatives=10, candidates=30, progress=False)
    assert set(mined.negatives) == set(TOPICS)
    _assert_no_relevant(mined.negatives, pairs)
    # the relevant ads and their duplicates were among the candidates and were skipped
    assert mined.stats["skipped_relevant_text"] >= 4 * len(TOPICS)
    for negatives in mined.negatives.values():
        assert len(negatives) == 10 and len({text_key(n) for n in negatives}) == 10
    # an ad labelled irrelevant stays eligible: it is a hard negative
    assert "Data science bootcamp with Python" in mined.for_query("learn python")


def test_mining_skips_ids_given_as_relevant_and_checks_its_arguments() -> None:
    @dataclass
    class FakeHit:
        ad_id: str
        text: str

    class FakeRetriever:
        def search(self, queries: list[str], k: int) -> list[list[FakeHit]]:
            hits = [FakeHit("x1", "Relevant ad"), FakeHit("x2", "relevant AD!"), FakeHit("x3", "other ad"),
                    FakeHit("x4", "Other ad"), FakeHit("x5", "third ad"), FakeHit("x6", "fourth ad")]
            return [hits[:k] for _ in queries]

    pairs = pairs_from_lists(["q"], ["Relevant ad"], [1])
    mined = mine_hard_negatives(FakeRetriever(), pairs, n_negatives=3, candidates=6,
                                relevant_ids={"q": {"x5"}}, progress=False)
    assert mined.for_query("q") == ["other ad", "fourth ad"]
    assert mined.stats == {"queries": 1, "candidates_seen": 6, "skipped_relevant_text": 2,
                           "skipped_relevant_id": 1, "skipped_repeated_text": 1, "negatives": 2,
                           "queries_short_of_negatives": 1}
    with pytest.raises(ValueError, match="candidates \\(2\\) must be at least n_negatives \\(3\\)"):
        mine_hard_negatives(FakeRetriever(), pairs, n_negatives=3, candidates=2)


def test_mnrl_rows_rotate_mined_negatives_and_fill_without_relevant_texts() -> None:
    pairs = _labelled()
    mined = {"cheap flights": ["Order pizza online tonight", "Python course for beginners"]}
    rows, stats = mnrl_rows(pairs, mined, n_negatives=1)
    assert list(rows) == ["anchor", "positive", "negative_1"]
    assert stats == {"rows": 10, "mined_used": 2, "random_filled": 8}
    flights = [n for a, n in zip(rows["anchor"], rows["negative_1"]) if a == "cheap flights"]
    assert flights == ["Order pizza online tonight", "Python course for beginners"]
    relevant = {q: {text_key(t) for t in ts} for q, ts in pairs.relevant_texts().items()}
    for anchor, negative in zip(rows["anchor"], rows["negative_1"]):
        assert text_key(negative) not in relevant[anchor]


# ---------------------------------------------------------------- training


@pytest.mark.slow
def test_train_encoder_mnrl_with_hard_negatives_saves_a_loadable_model(
    tiny_model: Path, tiny_index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tuned"
    config = TrainEncoderConfig(loss="mnrl", batch_size=4, max_steps=2, hard_negatives=2,
                                mining_candidates=10, dev_fraction=0.4, progress=False)
    summary = train_encoder(_labelled(), out, model=tiny_model, config=config, index=tiny_index)
    assert (summary.out, summary.model) == (str(out), str(tiny_model.resolve()))
    assert summary.seconds > 0 and summary.to_dict()["model"] == summary.model
    assert summary.steps == 2 and summary.primary_metric == "dev_cosine_ndcg@10"
    assert summary.hard_negatives["mined_used"] > 0 and summary.hard_negatives["rows"] == summary.train_rows
    # two relevant ads per query, two negatives per row: four distinct mined negatives per query
    assert summary.hard_negatives["negatives"] // 4 == summary.train_pairs["queries"]
    assert summary.hard_negatives["negatives"] % 4 == 0
    assert 0 <= summary.dev_before["dev_cosine_ndcg@10"] <= 1 and summary.dev_history
    vectors = Encoder(out).encode(["cheap flights", "pizza"])
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    record = json.loads((out / TRAINING_FILE).read_text(encoding="utf-8"))
    assert record["config"]["index"] == str(tiny_index)
    assert not (tmp_path / "tuned.checkpoints").exists()


def test_train_encoder_keeps_the_vocabulary_extension_record(tiny_model: Path, tmp_path: Path) -> None:
    """extend-vocab → train-encoder → train-reranker: BertSim reads the added rows' start from
    the encoder folder, so train-encoder must carry the record over."""
    import shutil

    from adrecall.adaptation_history import added_vocab_start, write_history

    extended = tmp_path / "extended"
    shutil.copytree(tiny_model, extended)
    write_history(extended, tmp_path / "none",
                  {"step": "extend-vocab", "old_vocab_size": 30, "new_vocab_size": 40})
    config = TrainEncoderConfig(loss="cosent", batch_size=4, max_steps=1, dev_fraction=0.4,
                                progress=False)
    train_encoder(_labelled(), tmp_path / "tuned", model=extended, config=config)
    assert added_vocab_start(tmp_path / "tuned") == 30


@pytest.mark.slow
def test_train_encoder_command_cosent(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pairs = _labelled()
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"query": pairs.queries, "text": pairs.texts, "label": pairs.labels}).to_csv(path, index=False)
    out = tmp_path / "cosent"
    code = main(["train-encoder", "--train", str(path), "--out", str(out), "--model", str(tiny_model),
                 "--loss", "cosent", "--max-steps", "2", "--batch-size", "4", "--dev-fraction", "0.4",
                 "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained cosent" in printed and "dev_spearman_cosine" in printed
    assert (out / "modules.json").is_file()
    assert Encoder(out).encode("pizza").shape == (1, 32)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-size", "1"], "batch_size must be at least 2"),
        (["--loss", "cosent", "--index", "somewhere"], "for --loss mnrl only"),
        (["--index", "NOPE"], "index directory .* does not exist"),
        (["--dev-fraction", "1.5"], r"dev_fraction must be in \(0, 1\)"),
        (["--label-column", "grade"], r"missing column\(s\) \['grade'\]"),
        (["--hard-negatives", "5", "--mining-candidates", "3"], "mining_candidates \\(3\\) must be at least"),
    ],
)
def test_train_encoder_command_refuses_bad_input_in_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    pairs = _labelled()
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"query": pairs.queries, "text": pairs.texts, "label": pairs.labels}).to_csv(path, index=False)
    extra = [str(tmp_path / "nope") if e == "NOPE" else e for e in extra]
    code = main(["train-encoder", "--train", str(path), "--out", str(tmp_path / "o"), "--model",
                 str(tiny_model), "--max-steps", "1", "--quiet", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    import re

    assert re.search(message, err), err


def test_train_encoder_refuses_existing_output_and_dev_without_relevant(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(FolderError, match=r"holds files adrecall did not write \(keep.txt\)"):
        train_encoder(_labelled(), out, model=tiny_model,
                      config=TrainEncoderConfig(overwrite=True))
    dev = pairs_from_lists(["q"], ["some ad"], [0], role="dev", source="dev.csv")
    with pytest.raises(PairsError, match="dev pairs dev.csv hold no pair with label >= 1"):
        train_encoder(_labelled(), tmp_path / "new", model=tiny_model, dev=dev,
                      config=TrainEncoderConfig(max_steps=1))
    with pytest.raises(ValueError, match="unknown loss 'triplet'"):
        TrainEncoderConfig(loss="triplet")


def test_text_key_keeps_texts_apart_that_normalisation_would_empty() -> None:
    """Duplicates are judged on the text the model reads, so two Cyrillic ads stay two ads."""
    assert text_key("Привет мир") != text_key("Пока")
    assert text_key("Cheap  Flights!") == text_key("cheap flights")
    pairs = pairs_from_lists(["q", "q"], ["Привет мир", "🔥🔥"], [1, 0]).normalized()
    assert pairs.texts == ["Привет мир", "🔥🔥"]
