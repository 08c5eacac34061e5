"""The one text-file reader (adrecall.text_files) behind domain_adapt and the diagnostics."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pandas as pd
import pytest

from adrecall import text_files
from adrecall.text_files import read_texts


def test_domain_adapt_reads_corpora_with_it_and_the_diagnostics_too(tmp_path: Path) -> None:
    import domain_adapt.corpus
    from encoder_training import diagnostics

    assert domain_adapt.corpus.read_texts is read_texts
    path = tmp_path / "t.txt"
    path.write_text(" a b \nc d\n", encoding="utf-8")
    with mock.patch.object(text_files, "read_texts", wraps=read_texts) as shared:
        assert diagnostics.read_texts(path) == ["a b", "c d"]
    assert shared.call_count == 1


def test_blank_cells_are_skipped_or_named(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    pd.DataFrame({"q": ["a", None, "c"], "t": ["x", "y", " "]}).to_csv(table, index=False)
    assert read_texts(table, text_columns=["q", "t"]) == ["a", "x", "y", "c"]
    with pytest.raises(ValueError, match=r"data row 2 column 'q' is '', not text"):
        read_texts(table, text_columns=["q", "t"], blank_cells="error")
    assert read_texts(table, text_columns=["t"], limit=1) == ["x"]


def test_files_are_named_in_every_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown corpus format '.docx'"):
        read_texts(tmp_path / "c.docx")
    with pytest.raises(FileNotFoundError, match="text file .* does not exist"):
        read_texts(tmp_path / "absent.txt", what="text")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"ok\ncaf\xe9\n")
    with pytest.raises(ValueError, match=r"byte 6 \(line 2\) is not UTF-8"):
        read_texts(latin)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no non-empty text"):
        read_texts(blank)
