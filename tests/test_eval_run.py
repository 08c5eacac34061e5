"""The benchmark runner with toy systems: report shape, merge, and the three output files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.datasets import EvalDataset
from benchmarks.eval_run import (
    System,
    build_systems,
    markdown,
    merge_reports,
    rrf_system,
    run_benchmark,
    write_report,
)


def _toy() -> EvalDataset:
    return EvalDataset(
        name="toy",
        corpus={"a": "wing flow", "b": "flat plate", "c": "heat slab"},
        queries={"q1": "wing", "q2": "plate", "q3": "nothing judged"},
        qrels={"q1": {"a": 1}, "q2": {"b": 2, "c": 1}},
    )


def _fixed(name: str, ranking: list[str]) -> System:
    return System(name, f"{name} model", lambda qs: {q: [(d, 1.0 / (i + 1)) for i, d in
                                                         enumerate(ranking)] for q in qs})


def test_report_files_and_merge(tmp_path):
    data = _toy()
    systems = [_fixed("abc", ["a", "b", "c"]), _fixed("cba", ["c", "b", "a"])]
    systems.append(rrf_system(systems[:2], depth=100))
    report = run_benchmark(data, systems, command="python -m test", ks=[1, 2])
    first = report["systems"][0]
    assert first["primary_metric"] == "recall@2"
    assert first["n_queries"] == 2 and first["n_excluded"] == 1
    assert first["metrics"]["recall@1"] == pytest.approx(0.5)  # q1 hit, q2 miss
    assert len(first["recall_curve"]) == 100 and first["recall_curve"][-1] == 1.0
    assert first["command"] == "python -m test" and "date" in first
    assert "| abc |" in markdown(report)
    paths = write_report(report, tmp_path)
    assert [p.suffix for p in paths] == [".json", ".md", ".png"]
    assert paths[2].stat().st_size > 1000

    later = run_benchmark(data, [_fixed("new", ["b", "a", "c"])], command="again", ks=[1, 2])
    write_report(later, tmp_path, merge=True)
    merged = json.loads(paths[0].read_text())
    assert [s["name"] for s in merged["systems"]] == ["new", "abc", "cba", "RRF(abc + cba)"]
    with pytest.raises(ValueError, match="cannot merge"):
        merge_reports({"dataset": "other"}, later)


def test_unknown_system_names_the_choices():
    with pytest.raises(ValueError, match="unknown system 'nope'"):
        build_systems(["nope"], _toy(), 10)
    with pytest.raises(ValueError, match="two or more"):
        build_systems(["rrf:bm25"], _toy(), 10)


def test_names_with_plus_and_unavailable_systems_are_skipped(monkeypatch, capsys):
    from benchmarks import eval_run

    def unavailable(dataset, depth):
        raise eval_run.SystemUnavailable("it needs --thing")

    monkeypatch.setitem(eval_run.SYSTEMS, "abc", lambda d, n: _fixed("abc", ["a", "b", "c"]))
    monkeypatch.setitem(eval_run.SYSTEMS, "abc+x", lambda d, n: _fixed("abc+x", ["c", "a"]))
    monkeypatch.setitem(eval_run.SYSTEMS, "gone", unavailable)
    systems = build_systems(["abc", "rrf:abc+abc+x", "gone", "rrf:abc+gone"], _toy(), 10)
    assert [s.name for s in systems] == ["abc", "RRF(abc + abc+x)"]
    assert "toy: skipping gone: it needs --thing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="loose"):
        eval_run.register_system("a+", unavailable)


class _Shortest:
    def score(self, query, texts):
        return -np.array([len(t) for t in texts], dtype=float)


def test_dense_systems_build_cached_indexes(monkeypatch, tmp_path, capsys):
    from benchmarks.dense_systems import (
        DenseOptions,
        cached_index,
        load_encoder,
        register_dense_systems,
    )

    monkeypatch.setenv("ADRECALL_CACHE", str(tmp_path))
    data = _toy()
    data.corpus["d"] = "  "  # no text: left out of the index
    register_dense_systems()
    systems = build_systems(["dense-flat", "dense-ivf", "dense-flat+rerank"], data, 10)
    assert [s.name for s in systems] == ["dense-flat", "dense-ivf"]
    assert "skipping dense-flat+rerank: it needs a trained BertSim model" in capsys.readouterr().err
    assert "3 docs indexed; 1 doc(s) without text left out (d)" in systems[0].model
    report = run_benchmark(data, systems, command="test", ks=[1, 3])
    assert report["systems"][0]["metrics"]["recall@3"] == 1.0  # every relevant doc is in the top 3
    flat = cached_index(data, "flat", load_encoder(None))
    assert not flat.built_now  # second use: cached
    manifest = flat.path / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"format_version": 1', '"format_version": 0'))
    assert cached_index(data, "flat", load_encoder(None)).built_now  # unreadable: rebuilt
    assert "rebuilding the cached flat index" in capsys.readouterr().err
    assert len(list((tmp_path / "eval" / "indexes").iterdir())) == 1

    register_dense_systems(DenseOptions(reranker=_Shortest()))
    try:
        (reranked,) = build_systems(["dense-flat+rerank"], data, 10)
    finally:
        register_dense_systems()
    run = reranked.search({"q": "wing"})
    # shortest first: "wing flow" and "heat slab" (9 characters) tie, the dense score breaks it
    assert [d for d, _ in run["q"]] == ["a", "c", "b"]
    assert "reranked by _Shortest, top 100" in reranked.model
