"""Checks shared by every reader of labelled ``(query, text, label)`` pairs (BertSim training,
encoder training): each failure names the file, the data row (1-based, header not counted)
and the fix, and runs before any model loads."""

from __future__ import annotations

from collections.abc import Sequence, Sized
from pathlib import Path

import numpy as np
import pandas as pd

from adrecall.tables import iter_table_chunks


class PairsError(ValueError):
    """Labelled pairs cannot be used as given; the message names the file, row and a fix."""


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
