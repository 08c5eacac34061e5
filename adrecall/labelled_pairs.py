"""The one reader of labelled ``(query, text, label)`` pairs (BertSim training, encoder
training, diagnostics): :class:`PairFormat` names the columns and, optionally, the scale the
labels are declared on; :func:`read_labelled_pairs` reads a table (CSV, TSV, JSONL, Parquet)
and :func:`labelled_pairs_from_lists` checks in-memory pairs with the same rules. Each failure
names the file, the data row (1-based, header not counted) and the fix, and runs before any
model loads. The packages wrap the validated lists in their own containers
(:class:`rerank.pairs.LabelledPairs`, :class:`encoder_training.pairs.Pairs`)."""

from __future__ import annotations

from collections.abc import Sequence, Sized
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adrecall.tables import TableError, iter_table_chunks, require_columns, table_columns

COLUMN_OPTIONS = "--query-column/--text-column/--label-column"


class PairsError(ValueError):
    """Labelled pairs cannot be used as given; the message names the file, row and a fix."""


@dataclass(frozen=True)
class PairFormat:
    """Which columns hold the query, the text and the graded label, and the scale
    ``label_min..label_max`` the labels are declared on (``None`` for both: any finite number).

    The three columns must differ; a declared scale needs ``label_max > label_min``.
    """

    query_column: str = "query"
    text_column: str = "text"
    label_column: str = "label"
    label_min: float | None = None
    label_max: float | None = None

    def __post_init__(self) -> None:
        if len(set(self.columns)) != 3:
            raise ValueError(f"query, text and label columns must differ, got {self.columns}")
        if (self.label_min is None) != (self.label_max is None):
            raise ValueError(
                f"declare both ends of the label scale or neither, got "
                f"{self.label_min}..{self.label_max}"
            )
        if self.label_min is not None and not float(self.label_max) > float(self.label_min):
            raise ValueError(
                f"label scale must have label_max > label_min, got "
                f"{self.label_min}..{self.label_max}"
            )

    @property
    def columns(self) -> list[str]:
        """``[query column, text column, label column]``."""
        return [self.query_column, self.text_column, self.label_column]

    @property
    def scale(self) -> tuple[float, float] | None:
        """The declared ``(label_min, label_max)``, or ``None``."""
        if self.label_min is None or self.label_max is None:
            return None
        return float(self.label_min), float(self.label_max)


def check_pair_lengths(queries: Sized, texts: Sized, labels: Sized, where: str) -> None:
    """In-memory pairs need one query, one text and one label per pair, and at least one pair."""
    if not (len(queries) == len(texts) == len(labels)):
        raise PairsError(
            f"{where}: {len(queries)} queries, {len(texts)} texts and {len(labels)} labels; "
            "give one of each per pair"
        )
    if not len(queries):
        raise PairsError(f"{where}: no rows; give labelled pairs")


def validate_pairs_frame(
    frame: pd.DataFrame,
    columns: Sequence[str],
    where: str,
    label_scale: tuple[float, float] | None = None,
) -> tuple[list[str], list[str], np.ndarray]:
    """Queries, texts and float labels of ``frame`` (``columns`` = query, text, label names),
    whose index holds 0-based data rows (messages name them 1-based).

    Queries and texts must be non-blank strings, labels finite numbers, and inside
    ``label_scale`` (min, max) when one is declared.
    """
    query_col, text_col, label_col = columns
    for column in (query_col, text_col):
        for row, value in frame[column].items():
            if value is None or (isinstance(value, float) and np.isnan(value)):
                raise PairsError(
                    f"{where}: data row {row + 1} has no {column!r} value; every pair needs a "
                    f"non-empty {column}"
                )
            if not isinstance(value, str):
                raise PairsError(
                    f"{where}: data row {row + 1} column {column!r} is a "
                    f"{type(value).__name__} ({value!r}); it must be text"
                )
            if not value.strip():
                raise PairsError(
                    f"{where}: data row {row + 1} column {column!r} is empty; remove the row or "
                    "give it text"
                )
    raw = frame[label_col]
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.astype(float))
    if bad.any():
        row = bad.idxmax()
        expected = (f"on the declared scale {label_scale[0]:g}..{label_scale[1]:g}"
                    if label_scale else "such as 0/1/2 (relevant = label >= 1 by default)")
        raise PairsError(
            f"{where}: data row {row + 1} label {raw[row]!r} in column {label_col!r} is not "
            f"a number; labels must be numbers {expected}"
        )
    values = numeric.to_numpy(dtype=np.float64)
    if label_scale is not None:
        low, high = label_scale
        outside = (values < low) | (values > high)
        if outside.any():
            pos = int(np.argmax(outside))
            raise PairsError(
                f"{where}: data row {frame.index[pos] + 1} label {values[pos]:g} is outside "
                f"the declared label scale {low:g}..{high:g}; fix the label or declare the "
                "data's scale (--label-min/--label-max, PairFormat(label_min=..., label_max=...))"
            )
    return frame[query_col].tolist(), frame[text_col].tolist(), values


def read_pairs_table(
    path: Path,
    columns: Sequence[str],
    where: str,
    label_scale: tuple[float, float] | None = None,
) -> tuple[list[str], list[str], np.ndarray]:
    """Every row of a pairs table (CSV, TSV, JSONL, Parquet; columns already checked), read in
    chunks and validated by :func:`validate_pairs_frame`; an empty table is refused."""
    queries: list[str] = []
    texts: list[str] = []
    labels: list[np.ndarray] = []
    for chunk in iter_table_chunks(path, columns=list(columns)):
        q, t, y = validate_pairs_frame(chunk, columns, where, label_scale)
        queries += q
        texts += t
        labels.append(y)
    if not queries:
        raise PairsError(f"{where} holds no rows; give it labelled pairs")
    return queries, texts, np.concatenate(labels)


def read_labelled_pairs(
    path: str | Path, pair_format: PairFormat | None = None, *, role: str = "train"
) -> tuple[list[str], list[str], np.ndarray]:
    """Queries, texts and float labels (on the data's own scale) of a pairs table.

    ``role`` ("train", "dev", "labelled") starts every message. Missing columns are named
    with the column options; a dev file whose columns do not match the training layout is
    refused with a message that says so. Every row is checked (:func:`validate_pairs_frame`,
    against ``pair_format.scale`` when declared) and an empty table is refused.
    """
    fmt = pair_format or PairFormat()
    path = Path(path)
    try:
        require_columns(path, fmt.columns)
    except TableError as exc:
        found = _columns_or_none(path)
        if role == "dev" and found is not None:
            lacking = [c for c in fmt.columns if c not in found]
            raise PairsError(
                f"dev file {path} does not match the training data's layout: it lacks "
                f"column(s) {lacking} (the columns used are {fmt.columns}); give it the same "
                "column names as the training file"
            ) from exc
        raise PairsError(f"{role} pairs: {exc} (options {COLUMN_OPTIONS})") from exc
    return read_pairs_table(path, fmt.columns, f"{role} pairs {path}", fmt.scale)


def labelled_pairs_from_lists(
    queries: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[float] | np.ndarray,
    pair_format: PairFormat | None = None,
    *,
    role: str = "train",
    source: str = "<memory>",
) -> tuple[list[str], list[str], np.ndarray]:
    """Check in-memory pairs with the same rules as :func:`read_labelled_pairs`."""
    fmt = pair_format or PairFormat()
    where = f"{role} pairs {source}"
    check_pair_lengths(queries, texts, labels, where)
    frame = pd.DataFrame(dict(zip(fmt.columns, (list(queries), list(texts), list(labels)))))
    return validate_pairs_frame(frame, fmt.columns, where, fmt.scale)


def _columns_or_none(path: Path) -> list[str] | None:
    """The table's columns, or ``None`` when it cannot be read as a table at all."""
    try:
        return table_columns(path)
    except (TableError, FileNotFoundError):
        return None
