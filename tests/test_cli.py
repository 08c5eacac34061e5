"""The ``adrecall`` command line: build and search end to end, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adrecall.cli import main
from tests.conftest import write_table


def test_build_then_search_as_table_and_json(
    tmp_path: Path, ads_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    ads = write_table(ads_frame, tmp_path / "ads.jsonl")
    out = tmp_path / "idx"
    assert main(["build", "--ads", str(ads), "--out", str(out), "--quiet", "--index-type", "hnsw"]) == 0
    built = capsys.readouterr().out
    assert f"built {out}: 12 ads, dimension 384, hnsw index" in built

    assert main(["search", str(out), "cheap flights to japan", "-k", "3"]) == 0
    table = capsys.readouterr().out
    assert "query: cheap flights to japan" in table
    assert table.splitlines()[2].split()[2] == "a01"  # rank 1 is the Tokyo flights ad

    assert main(["search", str(out), "dentist", "pizza", "-k", "2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == ["dentist", "pizza"]
    assert lines[0]["hits"][0]["ad_id"] == "a10" and lines[1]["hits"][0]["ad_id"] == "a07"
    assert lines[0]["hits"][0]["metadata"] == {"industry": "industry-1"}


def test_build_json_summary(tmp_path: Path, ads_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    ads = write_table(ads_frame, tmp_path / "ads.tsv")
    assert main(["build", "--ads", str(ads), "--out", str(tmp_path / "idx"), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 12 and summary["dimension"] == 384 and summary["truncated"] == 0


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ads = tmp_path / "ads.csv"
    ads.write_text("id,text\nx,hello\n")
    assert main(["build", "--ads", str(ads), "--out", str(tmp_path / "idx"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("adrecall build: error:") and "missing column(s) ['ad_id']" in error
    assert "\n" not in error

    assert main(["search", str(tmp_path / "nothing"), "q"]) == 2
    assert "is not an adrecall index" in capsys.readouterr().err
