"""Read CSV, TSV, JSONL and Parquet tables in chunks, with errors that name file and row.

One reader for every table the project takes (ads, labelled pairs, queries), so that each
format behaves the same: values arrive as they are stored (CSV/TSV as strings, integer columns
with nulls as integers and ``None``), chunks are pandas DataFrames of at most ``chunk_rows``
rows, and nothing reads a whole file into memory. Text files are decoded line by line, so a
byte that is not UTF-8 is named exactly (its offset in the file, its line and data row); a
CSV/TSV row with more or fewer fields than the header is an error, never padded.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pandas as pd

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class TableError(ValueError):
    """A table cannot be used as given; the message names the file, row or column and a fix."""


def table_format(path: str | Path) -> str:
    """Format of a table file from its suffix: ``csv``, ``tsv``, ``jsonl`` or ``parquet``."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise TableError(
            f"{path}: unknown table format {suffix!r}; use one of {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def table_columns(path: str | Path) -> list[str]:
    """Column names of a table, read from its header, schema or first JSON object."""
    fmt = table_format(path)
    path = _existing(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise TableError(f"{path}: not a readable Parquet file ({exc})") from exc
    if fmt == "jsonl":
        for _, row in _jsonl_rows(path):
            return list(row)
        raise TableError(f"{path}: the file holds no rows")
    with open(path, "rb") as handle:
        return _header(path, _delimited_records(path, handle, _SEPARATORS[fmt]))


def require_columns(path: str | Path, required: Sequence[str]) -> list[str]:
    """Return the table's columns, or raise naming every required column it lacks."""
    columns = table_columns(path)
    missing = [c for c in required if c not in columns]
    if missing:
        found = "line 1 has the keys" if table_format(path) == "jsonl" else "the file has"
        raise TableError(
            f"{path}: missing column(s) {missing}; {found} {columns}. "
            "Rename them in the file or pass the matching column options"
        )
    return columns


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every line of a UTF-8 text file, line end dropped; a byte
    that is not UTF-8 raises :class:`TableError` naming its offset and line."""
    path = _existing(path)
    with open(path, "rb") as handle:
        lines = _Utf8Lines(handle)
        try:
            for text in lines:
                yield lines.line, text.rstrip("\r\n")
        except _NotUtf8 as exc:
            raise exc.error(path) from None


def iter_table_chunks(
    path: str | Path, chunk_rows: int = 10_000, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Yield the table as DataFrames of at most ``chunk_rows`` rows, in file order.

    ``columns`` restricts what is read (cheap for Parquet). Each chunk's index holds the
    0-based row number in the file, so errors found later can still name the row.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    fmt = table_format(path)
    path = _existing(path)
    if fmt == "parquet":
        yield from _parquet_chunks(path, chunk_rows, columns)
    elif fmt == "jsonl":
        yield from _jsonl_chunks(path, chunk_rows, columns)
    else:
        yield from _delimited_chunks(path, _SEPARATORS[fmt], chunk_rows, columns)


_SEPARATORS = {"csv": ",", "tsv": "\t"}


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table {str(path)!r} does not exist or is not a file")
    return path


def _delimited_chunks(
    path: Path, sep: str, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    with open(path, "rb") as handle:
        records = _delimited_records(path, handle, sep)
        header = _header(path, records)
        rows: list[list[str]] = []
        start = 0
        for row, line, fields in records:
            if len(fields) != len(header):
                raise TableError(
                    f"{path}: unreadable row: data row {row} (line {line}) has {len(fields)} "
                    f"fields but the header has {len(header)}; fix or remove that line"
                )
            rows.append(fields)
            if len(rows) == chunk_rows:
                yield _delimited_frame(rows, header, start, columns)
                start += len(rows)
                rows = []
        if rows:
            yield _delimited_frame(rows, header, start, columns)


def _delimited_frame(
    rows: list[list[str]], header: list[str], start: int, columns: Sequence[str] | None
) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=header, index=pd.RangeIndex(start, start + len(rows)))
    return frame if columns is None else frame[list(columns)]


def _header(path: Path, records: Iterator[tuple[int, int, list[str]]]) -> list[str]:
    first = next(records, None)
    if first is None:
        raise TableError(f"{path}: the file is empty (no header row)")
    header = first[2]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise TableError(
            f"{path}: column(s) {repeated} appear more than once in the header; "
            "give every column its own name"
        )
    return header


def _delimited_records(
    path: Path, handle: BinaryIO, sep: str
) -> Iterator[tuple[int, int, list[str]]]:
    """``(data row, line, fields)`` of every non-blank record: the header is data row 0, the
    first row under it data row 1; ``line`` is the last line the record spans."""
    lines = _Utf8Lines(handle)
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL  # TSV: quotes are text
    reader = csv.reader(lines, delimiter=sep, quoting=quoting, strict=True)
    row = 0
    try:
        for fields in reader:
            if fields:
                yield row, reader.line_num, fields
                row += 1
    except _NotUtf8 as exc:
        raise exc.error(path, "the header" if row == 0 else f"data row {row}") from None
    except csv.Error as exc:
        raise TableError(
            f"{path}: unreadable row: data row {row} (line {reader.line_num}): {exc}; "
            "fix or remove that line"
        ) from None


class _NotUtf8(Exception):
    """A line holds a byte that is not UTF-8: where it is in the file."""

    def __init__(self, offset: int, line: int) -> None:
        super().__init__(offset, line)
        self.offset = offset
        self.line = line

    def error(self, path: Path, row: str | None = None) -> TableError:
        where = f"line {self.line}" if row is None else f"{row}, line {self.line}"
        return TableError(
            f"{path}: byte {self.offset} ({where}) is not UTF-8; re-save the file as UTF-8"
        )


class _Utf8Lines:
    """The lines of a binary file, each decoded as UTF-8 (a leading byte-order mark dropped).

    A line that does not decode raises :class:`_NotUtf8` with the exact byte offset in the
    file; a newline byte never occurs inside a UTF-8 sequence, so decoding by line is exact.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.line = 0
        self._offset = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._handle.readline()
        if not raw:
            raise StopIteration
        self.line += 1
        start, self._offset = self._offset, self._offset + len(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _NotUtf8(start + exc.start, self.line) from None
        return text.removeprefix("\ufeff") if self.line == 1 else text


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TableError(f"{path}: line {line_no} is not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise TableError(
                f"{path}: line {line_no} is a JSON {type(row).__name__}, "
                "but every line must be one JSON object"
            )
        yield line_no, row


def _jsonl_chunks(
    path: Path, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    rows: list[dict] = []
    start = 0
    for line_no, row in _jsonl_rows(path):
        if columns is not None:
            missing = [c for c in columns if c not in row]
            if missing:
                raise TableError(f"{path}: line {line_no} lacks key(s) {missing}")
            row = {c: row[c] for c in columns}
        rows.append(row)
        if len(rows) == chunk_rows:
            yield _frame(rows, start)
            start += len(rows)
            rows = []
    if rows:
        yield _frame(rows, start)


def _frame(rows: list[dict], start: int) -> pd.DataFrame:
    # object columns: an integer column with a null keeps its integers (not floats with NaN)
    return pd.DataFrame(rows, index=pd.RangeIndex(start, start + len(rows)), dtype=object)


def _parquet_chunks(
    path: Path, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    start = 0
    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            frame = batch.to_pandas(integer_object_nulls=True)
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
    except TableError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise TableError(f"{path}: not a readable Parquet file ({exc})") from exc
