"""BEIR files: write/read round trip and bad input; converters on the shared real data."""

from __future__ import annotations

import json

import pytest

from adrecall.tables import TableError
from benchmarks.datasets import (
    DatasetMissing,
    EvalDataset,
    candidates,
    datasets_root,
    load_eval_dataset,
    read_beir,
    read_qrels,
    read_queries,
    write_beir,
)


def _tiny() -> EvalDataset:
    return EvalDataset(
        name="tiny",
        corpus={"d1": "a wing in a slipstream", "d2": "价格多少钱", "d3": "flat plate"},
        titles={"d1": "Wings", "d3": "flat plate"},
        queries={"q1": "wing", "q2": "价格"},
        qrels={"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}},
        query_extras={"q1": {"smart_id": "001"}},
    )


def test_beir_round_trip(tmp_path):
    original = _tiny()
    write_beir(original, tmp_path / "tiny")
    header = (tmp_path / "tiny" / "qrels.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "query-id\tcorpus-id\tscore"
    first = json.loads((tmp_path / "tiny" / "corpus.jsonl").read_text("utf-8").splitlines()[0])
    assert first == {"_id": "d1", "title": "Wings", "text": "a wing in a slipstream"}
    loaded = read_beir(tmp_path / "tiny")
    assert loaded.name == "tiny"
    assert loaded.corpus == original.corpus
    assert loaded.titles == original.titles
    assert loaded.queries == original.queries
    assert loaded.qrels == original.qrels
    assert loaded.query_extras == original.query_extras
    assert loaded.doc_ids() == ["d1", "d2", "d3"]
    # the title is prepended unless the text already starts with it
    assert loaded.doc_texts() == ["Wings a wing in a slipstream", "价格多少钱", "flat plate"]
    assert loaded.doc_texts(with_title=False)[0] == "a wing in a slipstream"
    assert candidates(loaded) == {"q1": ["d1", "d3"], "q2": ["d2"]}
    assert loaded.stats()["n_relevant_pairs"] == 2


def test_reads_corpus_without_titles_and_numeric_ids(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": 1, "text": "x"}\n{"_id": 2, "text": "y"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n')
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq\t1\t1\n")
    data = read_beir(tmp_path)
    assert data.corpus == {"1": "x", "2": "y"} and data.titles == {}
    assert data.qrels == {"q": {"1": 1}}
    assert read_queries(tmp_path / "queries.jsonl") == {"q": "x"}


def test_bad_files_raise_with_the_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus.jsonl"):
        read_beir(tmp_path)
    bad = tmp_path / "qrels.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\nq\td\thigh\n")
    with pytest.raises(TableError, match="line 2.*integers"):
        read_qrels(bad)
    bad.write_text("query-id\tcorpus-id\tscore\nq\td\t1\nq\td\t2\n")
    with pytest.raises(TableError, match="again"):
        read_qrels(bad)
    bad.write_text("qid\tdocid\tscore\n")
    with pytest.raises(TableError, match="missing column"):
        read_qrels(bad)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n')
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(TableError, match="'a' appears twice"):
        read_beir(tmp_path)


def test_validate_names_unknown_ids():
    data = _tiny()
    data.qrels["q9"] = {"d9": 1}
    with pytest.raises(ValueError, match="q9.*d9"):
        data.validate()


def test_missing_source_data_raises_dataset_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("ADRECALL_DATASETS", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ADRECALL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetMissing, match="ADRECALL_DATASETS"):
        load_eval_dataset("cranfield")
    with pytest.raises(ValueError, match="unknown evaluation set"):
        load_eval_dataset("msmarco")


@pytest.fixture
def shared_data(tmp_path, monkeypatch):
    """The real data sets, converted into a throw-away cache; skips when they are absent."""
    root = datasets_root()
    if not (root / "cranfield").is_dir() or not (root / "qbqtc" / "v1").is_dir():
        pytest.skip(f"shared data sets not found under {root} (set ADRECALL_DATASETS)")
    monkeypatch.setenv("ADRECALL_CACHE", str(tmp_path / "cache"))
    return root


def test_cranfield_conversion(shared_data, tmp_path):
    data = load_eval_dataset("cranfield")
    assert data.stats() == {
        "n_docs": 1400,
        "n_queries": 225,
        "n_queries_with_relevant": 225,
        "n_judged_pairs": 1612,
        "n_relevant_pairs": 1612,
    }
    # qrels number queries by position: the 3rd query has .I 004
    assert data.query_extras["3"] == {"smart_id": "004"}
    assert _words(data.queries["3"]) == _words(_cranfield_field(shared_data / "cranfield" / "cran.qry", "004", "W"))
    # cranqrel's first line is "1 184 2": code 2 -> gain 3
    assert data.qrels["1"]["184"] == 3
    assert {g for j in data.qrels.values() for g in j.values()} == {1, 2, 3, 4}
    assert _words(data.titles["1"]) == _words(_cranfield_field(shared_data / "cranfield" / "cran.all.1400", "1", "T"))
    # converted once, then read back from the cache unchanged
    assert (tmp_path / "cache" / "eval" / "cranfield" / "manifest.json").is_file()
    again = load_eval_dataset("cranfield")
    assert again.qrels == data.qrels and again.corpus == data.corpus


def _cranfield_field(path, record_id: str, field: str) -> str:
    """One field of one record, read straight from the raw SMART file (a check that does not
    go through the converter)."""
    text = path.read_text(encoding="utf-8")
    record = next(r for r in text.split(".I ")[1:] if r.split("\n", 1)[0].strip() == record_id)
    return record.split(f"\n.{field}\n", 1)[1].split("\n.", 1)[0]


def _words(text: str) -> list[str]:
    return text.replace(" .", " ").split()[:8]


def test_qbqtc_pooled_conversion(shared_data):
    data = load_eval_dataset("qbqtc-v1-pooled")
    stats = data.stats()
    assert stats["n_docs"] == 17_710
    assert stats["n_queries"] == 160  # 69 dev + 91 test_public
    assert stats["n_queries_with_relevant"] == 160
    assert {g for j in data.qrels.values() for g in j.values()} == {0, 1, 2}
    first = json.loads((shared_data / "qbqtc" / "v1" / "dev.json").read_text(encoding="utf-8").split("\n", 1)[0])
    assert data.queries["q0000"] == first["query"]  # queries numbered in file order, dev first


def test_qbqtc_rerank_conversion(shared_data):
    data = load_eval_dataset("qbqtc-v1-rerank")
    lists = candidates(data)
    assert len(lists) == 160
    assert 18 <= sum(map(len, lists.values())) / len(lists) <= 20
    assert all(doc in data.corpus for docs in lists.values() for doc in docs)
