"""``adrecall eval`` on a small index of the sample catalogue: table, JSON, id checks, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adrecall.cli import main
from adrecall.tables import TableError
from index_build.build_job import build_index
from index_build.sample import sample_ads_path, sample_qrels_path, sample_queries_path
from retrieval.encoder import Encoder
from retrieval.evaluation import (
    check_ids,
    evaluate_retriever,
    read_qrels,
    read_queries,
    search_run,
)
from retrieval.metrics import evaluate
from retrieval.retriever import Retriever

JUDGED_QUERIES = ["q01", "q04"]  # cheap flights to Tokyo; teach my kid to make video games


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> dict[str, Path]:
    """A ~300-ad slice of the sample catalogue (every ad judged for two queries, plus every
    30th other ad), its index, and qrels limited to those two queries."""
    folder = tmp_path_factory.mktemp("eval")
    qrels = pd.read_csv(sample_qrels_path(), sep="\t", dtype=str)
    qrels = qrels[qrels["query_id"].isin(JUDGED_QUERIES)]
    ads = pd.read_csv(sample_ads_path(), dtype=str, keep_default_na=False)
    keep = ads["ad_id"].isin(set(qrels["ad_id"])) | (ads.index % 30 == 0)
    ads[keep].to_csv(folder / "ads.csv", index=False)
    qrels.to_csv(folder / "qrels.tsv", sep="\t", index=False)
    build_index(folder / "ads.csv", folder / "idx", model=encoder, progress=False)
    return {"index": folder / "idx", "qrels": folder / "qrels.tsv", "ads": folder / "ads.csv",
            "queries": sample_queries_path(), "dir": folder}


def _eval(files: dict[str, Path], *extra: str, qrels: Path | None = None,
          queries: Path | None = None) -> int:
    return main(["eval", str(files["index"]), "--queries", str(queries or files["queries"]),
                 "--qrels", str(qrels or files["qrels"]), *extra])


def test_eval_prints_the_table_and_writes_json(files, capsys, encoder):
    out = files["dir"] / "result.json"
    assert _eval(files, "--cutoffs", "1,5,100", "--json-file", str(out), "--per-query",
                 "--backend", "torch") == 0  # the engine of the retriever it is compared with
    printed = capsys.readouterr().out
    for name in ("recall@1", "recall@5", "recall@100", "mrr@10", "ndcg@10", "map@100"):
        assert f"\n{name} " in printed
    n_queries = len(read_queries(files["queries"]))
    assert f"queries evaluated: 2; excluded (no relevant doc): {n_queries - 2};" in printed

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["primary_metric"] == "recall@100"
    assert report["n_queries"] == 2 and sorted(report["per_query"]) == JUDGED_QUERIES
    assert report["settings"]["missing_relevant_doc_ids"] == []
    assert report["settings"]["index_ads"] == len(pd.read_csv(files["ads"]))
    assert report["settings"]["depth"] == 100
    # the same numbers as scoring the retriever's own hits: ad ids are the qrels' doc ids
    retriever = Retriever.load(files["index"], model=encoder)
    queries = {q: t for q, t in read_queries(files["queries"]).items() if q in JUDGED_QUERIES}
    expected = evaluate(search_run(retriever, queries, 100), read_qrels(files["qrels"]), ks=[1, 5, 100])
    for name, value in expected.metrics.items():
        assert report["metrics"][name] == pytest.approx(value)
        assert f"{name:<10}  {value:.4f}" in printed
    assert report["metrics"]["recall@100"] > 0.2  # the model finds some flights and coding ads


def test_json_prints_json_alone_and_old_spellings_still_work_with_a_warning(files, capsys):
    assert _eval(files, "--json", "-k", "120") == 0
    report = json.loads(capsys.readouterr().out)  # stdout is the JSON and nothing else
    assert report["settings"]["depth"] == 120
    assert sorted(report["metrics"]) == sorted(
        ["recall@1", "recall@10", "recall@100", "mrr@10", "ndcg@10", "map@100"])

    out = files["dir"] / "old.json"
    assert main(["eval", "--index", str(files["index"]), "--queries", str(files["queries"]),
                 "--qrels", str(files["qrels"]), "--k", "1,5", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    for old, new in (("--index", "the index as the first argument"), ("--k", "--cutoffs"),
                     ("--json FILE", "--json-file")):
        assert f"{old} is deprecated and will be removed in the next release; use {new}" in captured.err
    assert sorted(json.loads(out.read_text())["metrics"])[-2:] == ["recall@1", "recall@5"]

    assert _eval(files, "-k", "50") == 2
    assert "k=50 must be an integer at least the largest cut-off 100" in capsys.readouterr().err
    assert main(["eval", "--queries", str(files["queries"]), "--qrels", str(files["qrels"])]) == 2
    assert "give the index directory as the first argument" in capsys.readouterr().err


def test_beir_headers_give_the_same_result(files, capsys):
    beir = files["dir"] / "beir"
    beir.mkdir(exist_ok=True)
    rows = [{"_id": q, "text": t} for q, t in read_queries(files["queries"]).items()]
    (beir / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    qrels = pd.read_csv(files["qrels"], sep="\t", dtype=str)
    qrels.columns = ["query-id", "corpus-id", "score"]
    qrels.to_csv(beir / "qrels.tsv", sep="\t", index=False)
    assert _eval(files, qrels=beir / "qrels.tsv", queries=beir / "queries.jsonl") == 0
    beir_out = capsys.readouterr().out
    assert _eval(files) == 0
    assert capsys.readouterr().out == beir_out


def test_relevant_docs_missing_from_the_index_are_warned_about(files, capsys):
    assert _eval(files, qrels=sample_qrels_path()) == 0  # every query's qrels, most ads absent
    captured = capsys.readouterr()
    assert "relevant doc id(s) of the qrels are not ad ids of the index" in captured.err
    assert "queries evaluated: 44; excluded (no relevant doc): 0;" in captured.out


def test_bad_inputs_fail_with_a_clear_message(files, capsys, tmp_path):
    unknown_query = tmp_path / "unknown_query.tsv"
    unknown_query.write_text("query_id\tad_id\tscore\nq01\ten-travel-0001\t2\nzz9\ten-travel-0001\t1\n")
    assert _eval(files, qrels=unknown_query) == 2
    assert "query id(s) that the queries file lacks: ['zz9']" in capsys.readouterr().err

    other_ids = tmp_path / "other_ids.tsv"
    other_ids.write_text("query-id\tcorpus-id\tscore\nq01\t17\t2\nq04\t18\t1\n")
    assert _eval(files, qrels=other_ids) == 2
    assert "none of the 2 relevant doc ids of the qrels" in capsys.readouterr().err

    assert _eval(files, queries=tmp_path / "absent.jsonl") == 2
    assert "absent.jsonl' does not exist" in capsys.readouterr().err
    assert _eval(files, qrels=tmp_path / "absent.tsv") == 2
    assert "absent.tsv' does not exist" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "no_index"), "--queries",
                 str(files["queries"]), "--qrels", str(files["qrels"])]) == 2
    assert "no_index" in capsys.readouterr().err

    bad_header = tmp_path / "bad_header.tsv"
    bad_header.write_text("qid\tdocid\trel\nq01\ten-travel-0001\t2\n")
    assert _eval(files, qrels=bad_header) == 2
    assert "query-id<TAB>corpus-id<TAB>score or query_id<TAB>ad_id<TAB>score" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        _eval(files, "--cutoffs", "0,10")
    assert exit_info.value.code == 2
    assert "'0,10' is not a comma-separated list of positive integers" in capsys.readouterr().err


def test_readers_accept_both_layouts_and_name_bad_rows(tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query_id": "a", "text": "x", "language": "en"}\n{"query_id": 7, "text": "y"}\n')
    assert read_queries(queries) == {"a": "x", "7": "y"}
    queries.write_text('{"qid": "a", "text": "x"}\n')
    with pytest.raises(TableError, match="one of \\['_id', 'query_id'\\]"):
        read_queries(queries)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query_id\tad_id\tscore\na\tad-1\t2\na\tad-1\t2\n")  # a repeat is fine
    assert read_qrels(qrels) == {"a": {"ad-1": 2}}
    qrels.write_text("query_id\tad_id\tscore\na\tad-1\t1.5\n")
    with pytest.raises(TableError, match="line 2 .*integers"):
        read_qrels(qrels)


def test_check_ids_reports_missing_judged_docs():
    ids = check_ids({"q": "x"}, {"q": {"a": 2, "b": 0, "c": 1}}, ["a", "z"])
    assert ids.n_judged_docs == 3
    assert ids.missing_judged == ["b", "c"] and ids.missing_relevant == ["c"]


class _Shortest:
    """A stand-in reranker: shorter ad texts score higher."""

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        return -np.array([len(t) for t in texts], dtype=np.float64)


def test_evaluate_retriever_with_a_reranker(files, encoder):
    retriever = Retriever.load(files["index"], model=encoder, reranker=_Shortest(), candidates=20)
    queries = read_queries(files["queries"])
    result = evaluate_retriever(retriever, queries, read_qrels(files["qrels"]), ks=[10])
    assert result.settings["reranker"] == "_Shortest" and result.settings["candidates"] == 20
    assert result.primary_metric == "recall@10" and result.n_queries == 2
    hits = search_run(retriever, {"q01": queries["q01"]}, 5)["q01"]
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
