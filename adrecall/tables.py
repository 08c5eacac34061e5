"""Read CSV, TSV, JSONL and Parquet tables in chunks, with errors that name file and line.

One reader for every table the project takes (ads, labelled pairs, queries), so that each
format behaves the same: values arrive as they are stored (CSV/TSV as strings), chunks are
pandas DataFrames of at most ``chunk_rows`` rows, and nothing reads a whole file into memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

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
        for line_no, row in _jsonl_rows(path):
            return list(row)
        raise TableError(f"{path}: the file holds no rows")
    try:
        header = pd.read_csv(path, sep=_SEPARATORS[fmt], nrows=0, dtype=str)
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"{path}: the file is empty (no header row)") from exc
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not UTF-8 text ({exc})") from exc
    return [str(c) for c in header.columns]


def require_columns(path: str | Path, required: Sequence[str]) -> list[str]:
    """Return the table's columns, or raise naming every required column it lacks."""
    columns = table_columns(path)
    missing = [c for c in required if c not in columns]
    if missing:
        raise TableError(
            f"{path}: missing column(s) {missing}; the file has {columns}. "
            "Rename them in the file or pass the matching column options"
        )
    return columns


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
    quoting = 3 if sep == "\t" else 0  # TSV: tabs only, quotes are text (csv.QUOTE_NONE)
    start = 0
    try:
        reader = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            chunksize=chunk_rows,
            quoting=quoting,
            on_bad_lines="error",
            encoding="utf-8",
        )
        for chunk in reader:
            if columns is not None:  # selected after parsing, so malformed rows are still caught
                chunk = chunk[list(columns)]
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            yield chunk
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"{path}: the file is empty (no header row)") from exc
    except pd.errors.ParserError as exc:
        raise TableError(f"{path}: unreadable row ({exc}); fix or remove that line") from exc
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not UTF-8 text near byte {exc.start}; re-save it as UTF-8") from exc


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as handle:
        try:
            for line_no, line in enumerate(handle, start=1):
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
        except UnicodeDecodeError as exc:
            raise TableError(f"{path}: not UTF-8 text near byte {exc.start}; re-save it as UTF-8") from exc


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
    frame = pd.DataFrame.from_records(rows)
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def _parquet_chunks(
    path: Path, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    start = 0
    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
    except TableError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise TableError(f"{path}: not a readable Parquet file ({exc})") from exc
