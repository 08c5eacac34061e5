"""The one labelled-pairs reader (adrecall.labelled_pairs) behind rerank and encoder_training."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from adrecall.labelled_pairs import (
    PairFormat,
    PairsError,
    labelled_pairs_from_lists,
    read_labelled_pairs,
)


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_both_packages_use_the_one_column_class_and_reader() -> None:
    import encoder_training.pairs as encoder_pairs
    import rerank.pairs as rerank_pairs

    assert encoder_pairs.PairColumns is PairFormat
    assert issubclass(rerank_pairs.PairFormat, PairFormat)
    assert rerank_pairs.PairsError is encoder_pairs.PairsError is PairsError
    # BertSim keeps its 0-2 default scale and the manifest/fingerprint keys it always had
    assert asdict(rerank_pairs.PairFormat("q", "ad", "grade")) == {
        "query_column": "q", "text_column": "ad", "label_column": "grade",
        "label_min": 0.0, "label_max": 2.0,
    }


def test_column_class_checks() -> None:
    assert PairFormat().scale is None and PairFormat(label_min=0, label_max=5).scale == (0.0, 5.0)
    with pytest.raises(ValueError, match="columns must differ"):
        PairFormat("q", "q", "label")
    with pytest.raises(ValueError, match="both ends of the label scale or neither"):
        PairFormat(label_max=5.0)
    with pytest.raises(ValueError, match="label_max > label_min"):
        PairFormat(label_min=1, label_max=1)


def test_reader_checks_rows_and_the_declared_scale(tmp_path: Path) -> None:
    path = write(pd.DataFrame({"q": ["a", "b"], "t": ["x", "y"], "g": [0, 7]}), tmp_path / "p.csv")
    queries, texts, labels = read_labelled_pairs(path, PairFormat("q", "t", "g"))
    assert (queries, texts, labels.tolist()) == (["a", "b"], ["x", "y"], [0.0, 7.0])
    with pytest.raises(PairsError, match=r"data row 2 label 7 is outside the declared label scale"):
        read_labelled_pairs(path, PairFormat("q", "t", "g", 0.0, 2.0))
    with pytest.raises(PairsError, match=r"train pairs: .*missing column\(s\) \['label'\].*"
                                         r"--query-column"):
        read_labelled_pairs(path, PairFormat("q", "t"))
    with pytest.raises(PairsError, match=r"dev file .* does not match the training data's layout"):
        read_labelled_pairs(path, PairFormat("q", "t"), role="dev")
    with pytest.raises(PairsError, match="dev pairs: .*unknown table format"):
        read_labelled_pairs(path.rename(tmp_path / "p.json"), role="dev")


def test_in_memory_pairs_follow_the_same_rules() -> None:
    q, t, y = labelled_pairs_from_lists(["a"], ["x"], [1], role="dev", source="mem")
    assert (q, t, y.tolist()) == (["a"], ["x"], [1.0])
    with pytest.raises(PairsError, match="dev pairs mem: data row 1 column 'text' is empty"):
        labelled_pairs_from_lists(["a"], [" "], [1], role="dev", source="mem")
    with pytest.raises(PairsError, match="1 queries, 2 texts and 1 labels"):
        labelled_pairs_from_lists(["a"], ["x", "y"], [1])
