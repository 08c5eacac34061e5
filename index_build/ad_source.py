"""Ad tables (CSV, TSV, JSONL, Parquet) read in chunks and checked before any encoding.

An ad is a row with an id column and a text column (default ``ad_id`` and ``text``); every
other column is kept as metadata. :meth:`AdSource.scan` reads only those two columns once and
refuses, with the row named, missing columns, empty files, duplicate ids, empty texts and
unreadable rows, so a bad table fails in seconds rather than hours into a build.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adrecall.tables import TableError, iter_table_chunks, require_columns


class AdSourceError(TableError):
    """The ad table cannot be indexed as it is; the message names the row and the fix."""


@dataclass(frozen=True)
class AdChunk:
    """One chunk of ads in file order. ``first_row`` is the 0-based data row of its first ad."""

    number: int
    first_row: int
    ad_ids: list[str]
    texts: list[str]
    metadata: list[str]

    def __len__(self) -> int:
        return len(self.ad_ids)


@dataclass(frozen=True)
class AdSource:
    """A table of ads and the names of its id and text columns."""

    path: Path
    id_column: str = "ad_id"
    text_column: str = "text"

    def scan(self) -> int:
        """Check the whole table (ids and texts only) and return the number of ads."""
        require_columns(self.path, [self.id_column, self.text_column])
        seen: dict[str, int] = {}
        for frame in iter_table_chunks(self.path, 50_000, [self.id_column, self.text_column]):
            ids = self._ids(frame)
            self._check_texts(frame)
            for row, ad_id in zip(frame.index, ids):
                first = seen.setdefault(ad_id, row)
                if first != row:
                    raise AdSourceError(
                        f"{self.path}: ad id {ad_id!r} appears twice, at data rows {first + 1} "
                        f"and {row + 1}; ad ids must be unique"
                    )
        if not seen:
            raise AdSourceError(f"{self.path}: the table has a header but no ads")
        return len(seen)

    def chunks(self, chunk_rows: int) -> Iterator[AdChunk]:
        """Yield the ads in chunks of ``chunk_rows``, other columns packed as JSON metadata."""
        for number, frame in enumerate(iter_table_chunks(self.path, chunk_rows)):
            meta_columns = [c for c in frame.columns if c not in (self.id_column, self.text_column)]
            records = frame[meta_columns].to_dict("records") if meta_columns else [{}] * len(frame)
            yield AdChunk(
                number=number,
                first_row=int(frame.index[0]),
                ad_ids=self._ids(frame),
                texts=self._check_texts(frame),
                metadata=[_metadata_json(r) for r in records],
            )

    def _ids(self, frame: pd.DataFrame) -> list[str]:
        ids = []
        for row, value in zip(frame.index, frame[self.id_column]):
            if isinstance(value, str) and value.strip():
                ids.append(value)
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                ids.append(str(int(value)))
            else:
                raise AdSourceError(
                    f"{self.path}: data row {row + 1} has ad id {value!r} in column "
                    f"{self.id_column!r}; ids must be non-empty strings or integers"
                )
        return ids

    def _check_texts(self, frame: pd.DataFrame) -> list[str]:
        texts = frame[self.text_column].tolist()
        for row, value in zip(frame.index, texts):
            if not isinstance(value, str):
                found = "no text" if _missing(value) else f"{value!r}, not a string,"
                raise AdSourceError(
                    f"{self.path}: data row {row + 1} has {found} in text column "
                    f"{self.text_column!r}; every ad needs a text string"
                )
            if not value.strip():
                raise AdSourceError(
                    f"{self.path}: data row {row + 1} has an empty text in column "
                    f"{self.text_column!r}; remove the ad or give it text"
                )
        return texts


def _missing(value: Any) -> bool:
    return (
        value is None or value is pd.NA or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def _metadata_json(record: dict[str, Any]) -> str:
    """A row's other columns as JSON; a missing value (NaN, NA, a key a JSONL line lacks) is
    ``null``, never ``NaN``, which is not JSON."""
    cleaned = {k: None if _missing(v) else v for k, v in record.items()}
    return json.dumps(cleaned, ensure_ascii=False, default=_jsonable, allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    return str(value)
