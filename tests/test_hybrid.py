"""Lexical and hybrid search: the index built with ``--lexical``, the fusion formula, modes in
the Python API and the command line, and the lexical weight chosen on judged queries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adrecall.cli import main
from index_build.build_job import build_index
from retrieval.encoder import Encoder
from retrieval.evaluation import choose_lexical_weight
from retrieval.hybrid import RRF_C, fuse_lists
from retrieval.index_store import IndexFormatError
from retrieval.lexical_index import LEXICAL_FILES, LexicalIndex
from retrieval.retriever import Retriever

CATALOGUE = [
    ("part", "Replacement filter cartridge QX-4471 for garden pond pumps"),
    ("flight", "Affordable flights to Tokyo with free cancellation"),
    ("tickets", "Cheap tickets to Japan this spring, book now"),
    ("hotel", "Luxury hotel suites in Paris with breakfast"),
    ("pizza", "Fresh pizza delivered hot in 30 minutes"),
    ("dentist", "Family dentist accepting new patients"),
    ("shoes", "Running shoes sale for marathon runners"),
    ("loan", "Personal loans with low interest rates"),
    ("coding", "少儿编程课程 免费试听一节"),
    ("visa", "电子签证 免排队 限时优惠"),
    ("kyoto", "Weekend getaways in Kyoto"),
    ("osaka", "Round-trip airfare deals to Osaka"),
    ("seoul", "Airline seats on sale for Seoul"),
    ("bali", "Holiday packages to Bali"),
]


@pytest.fixture(scope="module")
def hybrid_index(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    folder = tmp_path_factory.mktemp("hybrid")
    pd.DataFrame(CATALOGUE, columns=["ad_id", "text"]).to_csv(folder / "ads.csv", index=False)
    build_index(folder / "ads.csv", folder / "idx", model=encoder, lexical=True, progress=False)
    return folder / "idx"


def test_rrf_and_weighted_fusion_follow_the_documented_formula() -> None:
    dense = [(10, 0.9), (11, 0.8), (12, 0.1)]
    lexical = [(12, 7.0), (13, 3.0)]
    w, u = 0.3, 0.5
    d = (1 - w) * (1 - u) ** 2
    fused = {c.row: c for c in fuse_lists(dense, lexical, "rrf", w, u)}
    assert fused[12].score == pytest.approx(d / (RRF_C + 3) + (1 - d) / (RRF_C + 1))
    assert fused[10].score == pytest.approx(d / (RRF_C + 1))
    assert fused[13].score == pytest.approx((1 - d) / (RRF_C + 2))
    assert fused[12].sources == {"dense": 3, "lexical": 1} and fused[13].sources == {"lexical": 2}
    order = [c.row for c in fuse_lists(dense, lexical, "rrf", w, u)]
    assert order == sorted(fused, key=lambda r: -fused[r].score)

    weighted = {c.row: c.score for c in fuse_lists(dense, lexical, "weighted", 0.5)}
    assert weighted == pytest.approx({10: 0.5, 11: 0.5 * 0.875, 12: 0.5, 13: 0.0})
    assert [c.row for c in fuse_lists(dense, lexical, "weighted", 0.5)][:2] == [10, 12]  # tie:
    # the better dense rank first
    assert [c.row for c in fuse_lists(dense, lexical, "rrf", 0.0)] == [10, 11, 12, 13]
    assert [c.row for c in fuse_lists(dense, lexical, "rrf", 1.0)][:2] == [12, 13]
    with pytest.raises(ValueError, match="lexical weight must be a number in"):
        fuse_lists(dense, lexical, "rrf", 1.5)
    with pytest.raises(ValueError, match="hybrid fusion must be one of"):
        fuse_lists(dense, lexical, "max", 0.5)


def test_unreadable_share_counts_what_the_vocabulary_lacks(encoder: Encoder) -> None:
    assert encoder.unreadable_share("cheap flights to Tokyo") == 0.0
    assert encoder.unreadable_share("Café Zürich") == 0.0  # accents stripped, as the model does
    assert encoder.unreadable_share("急用钱怎么办") > 0.9  # MiniLM knows 244 CJK characters
    assert encoder.unreadable_share("") == 0.0


def test_hybrid_finds_what_only_one_side_finds(hybrid_index: Path, encoder: Encoder) -> None:
    retriever = Retriever.load(hybrid_index, model=encoder, candidates=5)
    query = "QX-4471 cheap tickets to Japan"
    dense = [h.ad_id for h in retriever.search(query, k=5)]
    lexical = [h.ad_id for h in retriever.search(query, k=5, mode="lexical")]
    assert "part" in lexical and "part" not in dense  # a model number: only BM25 matches it
    assert "flight" in dense and "flight" not in lexical  # no shared word: only the model
    hits = {h.ad_id: h for h in retriever.search(query, k=5, mode="hybrid")}  # lists 5 deep
    assert hits["part"].sources == {"lexical": lexical.index("part") + 1}
    assert hits["part"].dense_score is None and hits["part"].lexical_score > 0
    assert hits["flight"].sources == {"dense": dense.index("flight") + 1}
    assert set(hits["tickets"].sources) == {"dense", "lexical"}
    chinese = retriever.search("孩子学编程课程", k=1, mode="hybrid")[0]
    assert chinese.ad_id == "coding"  # the model cannot read it; BM25 (jieba) can


def test_lexical_index_round_trip_matches_a_fresh_one(hybrid_index: Path, encoder: Encoder) -> None:
    retriever = Retriever.load(hybrid_index, model=encoder)
    fresh = LexicalIndex.build([t for _, t in CATALOGUE])  # the ads' order: document = row
    queries = ["cheap tickets", "QX-4471 filter", "编程", "nothing in common"]
    assert retriever.lexical is not None
    assert retriever.lexical.search(queries, 5) == fresh.search(queries, 5)
    assert retriever.manifest.lexical == fresh.settings()
    assert all((hybrid_index / name).is_file() for name in LEXICAL_FILES)


def test_a_damaged_lexical_file_is_refused(hybrid_index: Path, encoder: Encoder,
                                           tmp_path: Path) -> None:
    copy = Path(shutil.copytree(hybrid_index, tmp_path / "idx"))
    data = copy / "lexical.data.npy"
    array = np.load(data)
    array[0] += 1.0
    np.save(data, array)
    with pytest.raises(IndexFormatError, match="lexical.data.npy"):
        Retriever.load(copy, model=encoder)


def test_lexical_modes_need_a_lexical_index(tmp_path: Path, encoder: Encoder) -> None:
    pd.DataFrame(CATALOGUE[:4], columns=["ad_id", "text"]).to_csv(tmp_path / "ads.csv", index=False)
    build_index(tmp_path / "ads.csv", tmp_path / "dense", model=encoder, progress=False)
    retriever = Retriever.load(tmp_path / "dense", model=encoder)
    assert retriever.lexical is None and retriever.search("flights", k=1)[0].ad_id == "flight"
    for mode in ("lexical", "hybrid"):
        with pytest.raises(IndexFormatError, match="has no lexical index.*build --lexical"):
            retriever.search("flights", k=1, mode=mode)
    with pytest.raises(ValueError, match="mode must be one of"):
        retriever.search("flights", k=1, mode="sparse")


def test_search_and_eval_commands_take_the_mode(hybrid_index: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    assert main(["search", str(hybrid_index), "QX-4471 cheap tickets to Japan", "-k", "3",
                 "--mode", "hybrid", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    part = next(h for h in hits if h["ad_id"] == "part")  # lists 100 deep: both sides hold it
    assert part["sources"]["lexical"] <= 2 and part["lexical_score"] > 0
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query_id": "q1", "text": "filter cartridge QX-4471"}\n'
                       '{"query_id": "q2", "text": "flights to Tokyo"}\n', encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query_id\tad_id\tscore\nq1\tpart\t2\nq2\tflight\t2\nq2\ttickets\t1\n",
                     encoding="utf-8")
    assert main(["eval", str(hybrid_index), "--queries", str(queries), "--qrels", str(qrels),
                 "--cutoffs", "1,10", "--mode", "hybrid", "--tune-lexical-weight", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["settings"]["mode"] == "hybrid" and report["metrics"]["recall@10"] == 1.0
    assert report["tuned"]["lexical_weight"] == report["settings"]["lexical_weight"]
    assert "lexical weight chosen on these queries" in captured.err
    assert main(["eval", str(hybrid_index), "--queries", str(queries), "--qrels", str(qrels),
                 "--tune-lexical-weight"]) == 2
    assert "add --mode hybrid" in capsys.readouterr().err


def test_choose_lexical_weight_scores_every_weight(hybrid_index: Path, encoder: Encoder) -> None:
    retriever = Retriever.load(hybrid_index, model=encoder)
    queries = {"q1": "QX-4471", "q2": "kids coding class 编程课程"}
    qrels = {"q1": {"part": 2}, "q2": {"coding": 2}}
    weight, by_weight = choose_lexical_weight(retriever, queries, qrels, grid=(0.0, 0.5, 1.0))
    assert set(by_weight) == {0.0, 0.5, 1.0} and by_weight[weight] == max(by_weight.values())
    assert by_weight[1.0] == pytest.approx(1.0)  # BM25 alone finds both
