"""Labelled (query, text, label) pairs: read from a table or lists, validated up front.

Every check runs before any model is loaded, and each failure has its own message naming the
file, the row (0-based data row, header not counted) and the fix: missing columns, a dev file
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
from adrecall.tables import TableError, iter_table_chunks, require_columns


class PairsError(ValueError):
    """Labelled pairs cannot be used as given; the message names the file, row and a fix."""


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
    queries: list[str] = []
    texts: list[str] = []
    labels: list[np.ndarray] = []
    for chunk in iter_table_chunks(path, columns=fmt.columns):
        q, t, y = _validate_chunk(chunk, fmt, f"{role} file {path}")
        queries += q
        texts += t
        labels.append(y)
    if not queries:
        raise PairsError(f"{role} file {path} holds no rows; give it labelled pairs")
    raw = np.concatenate(labels)
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
    if not (len(queries) == len(texts) == len(labels)):
        raise PairsError(
            f"{role} pairs: {len(queries)} queries, {len(texts)} texts and {len(labels)} labels; "
            "give one of each per pair"
        )
    if not len(queries):
        raise PairsError(f"{role} pairs: no rows; give labelled pairs")
    frame = pd.DataFrame(
        {fmt.query_column: list(queries), fmt.text_column: list(texts), fmt.label_column: labels}
    )
    q, t, y = _validate_chunk(frame, fmt, f"{role} pairs {source}")
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


def _validate_chunk(
    chunk: pd.DataFrame, fmt: PairFormat, where: str
) -> tuple[list[str], list[str], np.ndarray]:
    for column in (fmt.query_column, fmt.text_column):
        values = chunk[column]
        for row, value in values.items():
            if value is None or (isinstance(value, float) and np.isnan(value)):
                raise PairsError(
                    f"{where}: row {row} has no {column!r} value; every pair needs a non-empty "
                    f"{column}"
                )
            if not isinstance(value, str):
                raise PairsError(
                    f"{where}: row {row} column {column!r} is a {type(value).__name__} "
                    f"({value!r}); it must be text"
                )
            if not value.strip():
                raise PairsError(
                    f"{where}: row {row} column {column!r} is empty; remove the row or give it text"
                )
    raw = chunk[fmt.label_column]
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.astype(float))
    if bad.any():
        row = bad.idxmax()
        raise PairsError(
            f"{where}: row {row} label {raw[row]!r} in column {fmt.label_column!r} is not a "
            f"number; labels must be numbers on the declared scale {fmt.label_min}..{fmt.label_max}"
        )
    values = numeric.to_numpy(dtype=np.float64)
    outside = (values < fmt.label_min) | (values > fmt.label_max)
    if outside.any():
        pos = int(np.argmax(outside))
        row = chunk.index[pos]
        raise PairsError(
            f"{where}: row {row} label {values[pos]:g} is outside the declared label scale "
            f"{fmt.label_min:g}..{fmt.label_max:g}; fix the label or declare the data's scale "
            "(--label-min/--label-max, PairFormat(label_min=..., label_max=...))"
        )
    return (
        chunk[fmt.query_column].tolist(),
        chunk[fmt.text_column].tolist(),
        values,
    )
