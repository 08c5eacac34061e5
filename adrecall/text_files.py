"""Read texts from files: ``.txt``/``.text`` (one text per line, UTF-8) or tables read with
:mod:`adrecall.tables` (CSV, TSV, JSONL, Parquet; one or more text columns).

The one reader behind domain adaptation's corpora (:mod:`domain_adapt.corpus`) and the
encoder diagnostics' text sample (:func:`encoder_training.diagnostics.read_texts`). A byte
that is not UTF-8 is named with its offset and line; a missing column is named with the
columns the table has.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from adrecall.tables import FORMATS, iter_table_chunks, require_columns, text_lines
from adrecall.textnorm import model_text

TEXT_SUFFIXES = (".txt", ".text")
BLANK_CELLS = ("skip", "error")


def read_texts(
    paths: str | Path | Sequence[str | Path],
    *,
    text_columns: Sequence[str] = ("text",),
    normalize: bool = True,
    dedupe: bool = True,
    limit: int | None = None,
    blank_cells: str = "skip",
    what: str = "corpus",
) -> list[str]:
    """All texts of the given files, in file order.

    ``.txt``/``.text`` files hold one text per line; tables must have every column named in
    ``text_columns`` (each row's columns are taken in turn). Each text becomes what the models
    read (:func:`adrecall.textnorm.model_text`: normalised when ``normalize``, else only
    stripped); blank lines are skipped. A table cell that is not text or is blank is skipped,
    or refused naming its row and column with ``blank_cells="error"``. ``dedupe`` keeps the
    first occurrence of each text; ``limit`` stops after that many texts. ``what`` ("corpus",
    "text") names the files in messages. No text at all is an error.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise ValueError(f"no {what} files given; pass at least one .txt or table file")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (or None for all texts), got {limit}")
    if blank_cells not in BLANK_CELLS:
        raise ValueError(f"blank_cells must be one of {BLANK_CELLS}, got {blank_cells!r}")
    texts: list[str] = []
    seen: set[str] = set()
    for path in paths:
        for raw in _raw_texts(Path(path), list(text_columns), blank_cells == "error", what):
            text = model_text(raw, normalize)
            if not text or (dedupe and text in seen):
                continue
            if dedupe:
                seen.add(text)
            texts.append(text)
            if limit is not None and len(texts) >= limit:
                return texts
    if not texts:
        raise ValueError(f"the {what} {[str(p) for p in paths]} holds no non-empty text")
    return texts


def _raw_texts(path: Path, columns: list[str], strict: bool, what: str) -> Iterator[str]:
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES and suffix not in FORMATS:
        raise ValueError(
            f"{path}: unknown {what} format {suffix!r}; use .txt or .text (one text per line) "
            f"or a table ({', '.join(sorted(FORMATS))})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist or is not a file")
    if suffix in TEXT_SUFFIXES:
        for _, line in text_lines(path):
            yield line
        return
    if not columns:
        raise ValueError(f"{path}: a table of texts needs at least one text column")
    require_columns(path, columns)
    for chunk in iter_table_chunks(path, columns=columns):
        for row, values in zip(chunk.index, zip(*(chunk[c] for c in columns))):
            for column, value in zip(columns, values):
                if isinstance(value, str) and value.strip():
                    yield value
                elif strict:
                    raise ValueError(
                        f"{path}: data row {row + 1} column {column!r} is {value!r}, not text; "
                        "remove the row or give it text"
                    )
