"""The benchmark runner with toy systems: report shape, merge, and the three output files."""

from __future__ import annotations

import json

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
