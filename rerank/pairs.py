"""Labelled (query, text, label) pairs: read from a table or lists, validated up front.

Every check runs before any model is loaded, and each failure has its own message naming the
file, the data row (1-based, header not counted) and the fix: missing columns, a dev file
whose columns do not match the training file, non-numeric labels, labels outside the declared
scale, empty queries or texts, and files without rows.

Labels are mapped linearly from the declared scale ``label_min..label_max`` onto BertSim's
0–2 score scale (e.g. STS-B's 0–5 becomes label × 0.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adrecall.checksums import file_sha256
from adrecall.labelled_pairs import (
    PairsError,
    check_pair_lengths,
    read_pairs_table,
    validate_pairs_frame,
)
from adrecall.tables import TableError, require_columns


@dataclass(frozen=True)
class PairFormat:
    """Which columns hold query, text and label, and the scale the labels are declared on."""

    query_column: str = "query"
    text_column: str = "text"
    label_column: str = "label"
    label_min: float = 0.0
    label_max: float = 2.0

    def __post_init__(self) -> None:
        names = [self.query_column, self.text_column, self.label_column]
        if len(set(names)) != 3:
            raise ValueError(f"query, text and label columns must differ, got {names}")
        if not float(self.label_max) > float(self.label_min):
            raise ValueError(
                f"label scale must have label_max > label_min, got "
                f"{self.label_min}..{self.label_max}"
            )

    @property
    def columns(self) -> list[str]:
        return [self.query_column, self.text_column, self.label_column]

    @property
    def scale(self) -> tuple[float, float]:
        return float(self.label_min), float(self.label_max)

    def to_score_scale(self, labels: np.ndarray) -> np.ndarray:
        """Map labels from the declared scale onto 0–2."""
        from rerank.model import SCORE_MAX, SCORE_MIN

        span = float(self.label_max) - float(self.label_min)
        scaled = (labels - float(self.label_min)) / span * (SCORE_MAX - SCORE_MIN) + SCORE_MIN
        return scaled.astype(np.float32)


@dataclass
class LabelledPairs:
    """Validated pairs: raw texts, labels already on the 0–2 score scale, and provenance."""

    queries: list[str]
    texts: list[str]
    labels: np.ndarray
    source: str = "<memory>"
    sha256: str | None = None
    raw_label_range: tuple[float, float] = field(default=(0.0, 0.0))

    def __len__(self) -> int:
        return len(self.queries)

    def describe(self) -> dict:
        """Provenance for the manifest: source, checksum, rows, distinct queries."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rows": len(self),
            "queries": len(set(self.queries)),
            "raw_label_range": list(self.raw_label_range),
        }


def read_pairs(
    path: str | Path,
    pair_format: PairFormat | None = None,
    *,
    role: str = "train",
) -> LabelledPairs:
    """Read and validate a pairs table (CSV, TSV, JSONL or Parquet).

    ``role`` ("train", "dev") starts every message; a dev file whose columns do not match the
    training layout is refused with a message that says so.
    """
    fmt = pair_format or PairFormat()
    path = Path(path)
    try:
        require_columns(path, fmt.columns)
    except TableError as exc:
        if role == "train":
            raise PairsError(f"train pairs: {exc}") from exc
        lacking = [c for c in fmt.columns if c not in _columns_or_empty(path)]
        raise PairsError(
            f"{role} file {path} does not match the training data's layout: it lacks "
            f"column(s) {lacking} (the columns used are {fmt.columns}); give it the same "
            "column names as the training file"
        ) from exc
    queries, texts, raw = read_pairs_table(path, fmt.columns, f"{role} file {path}", fmt.scale)
    return LabelledPairs(
        queries,
        texts,
        fmt.to_score_scale(raw),
        source=str(path.resolve()),
        sha256=file_sha256(path),
        raw_label_range=(float(raw.min()), float(raw.max())),
    )


def pairs_from_lists(
    queries: list[str],
    texts: list[str],
    labels: list[float] | np.ndarray,
    pair_format: PairFormat | None = None,
    *,
    role: str = "train",
    source: str = "<memory>",
) -> LabelledPairs:
    """Validate in-memory pairs with the same rules as :func:`read_pairs`."""
    fmt = pair_format or PairFormat()
    check_pair_lengths(queries, texts, labels, f"{role} pairs {source}")
    frame = pd.DataFrame(
        {fmt.query_column: list(queries), fmt.text_column: list(texts), fmt.label_column: labels}
    )
    q, t, y = validate_pairs_frame(frame, fmt.columns, f"{role} pairs {source}", fmt.scale)
    return LabelledPairs(
        q, t, fmt.to_score_scale(y), source=source,
        raw_label_range=(float(y.min()), float(y.max())),
    )


def _columns_or_empty(path: Path) -> list[str]:
    from adrecall.tables import table_columns

    try:
        return table_columns(path)
    except (TableError, FileNotFoundError):
        return []
