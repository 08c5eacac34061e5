"""Read a text corpus: ``.txt`` files (one text per line) or tables read with
:mod:`adrecall.tables` (CSV/TSV/JSONL/Parquet, one or more text columns)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from adrecall.tables import FORMATS, iter_table_chunks, require_columns
from adrecall.textnorm import model_text

TEXT_SUFFIXES = (".txt", ".text")


def read_texts(
    paths: str | Path | Sequence[str | Path],
    *,
    text_columns: Sequence[str] = ("text",),
    normalize: bool = True,
    dedupe: bool = True,
    limit: int | None = None,
) -> list[str]:
    """All texts of the given files, in file order.

    ``.txt``/``.text`` files hold one text per line; tables must have every column named in
    ``text_columns`` (each column's values are taken in turn, row by row). Each text becomes
    what the models read (:func:`adrecall.textnorm.model_text`); blank texts are skipped;
    ``dedupe`` keeps the first occurrence of each text; ``limit`` stops after that many texts.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise ValueError("no corpus files given; pass at least one .txt or table file")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (or None for all texts), got {limit}")
    texts: list[str] = []
    seen: set[str] = set()
    for path in paths:
        for raw in _raw_texts(Path(path), list(text_columns)):
            text = model_text(raw, normalize)
            if not text or (dedupe and text in seen):
                continue
            if dedupe:
                seen.add(text)
            texts.append(text)
            if limit is not None and len(texts) >= limit:
                return texts
    if not texts:
        raise ValueError(f"the corpus {[str(p) for p in paths]} holds no non-empty text")
    return texts


def texts_sha256(texts: Iterable[str]) -> str:
    """Content hash of a list of texts (order matters), for caches and resume checks."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def _raw_texts(path: Path, columns: list[str]) -> Iterable[str]:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {str(path)!r} does not exist or is not a file")
        with open(path, encoding="utf-8") as handle:
            try:
                for line in handle:
                    yield line.rstrip("\n")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}: not UTF-8 text ({exc}); re-save it as UTF-8") from exc
        return
    if suffix not in FORMATS:
        raise ValueError(
            f"{path}: unknown corpus format {suffix!r}; use .txt (one text per line) or a table "
            f"({', '.join(sorted(FORMATS))})"
        )
    if not columns:
        raise ValueError(f"{path}: a table corpus needs at least one text column")
    require_columns(path, columns)
    for chunk in iter_table_chunks(path, columns=columns):
        for row in chunk.itertuples(index=False):
            for value in row:
                if isinstance(value, str):
                    yield value


def prepare_texts(texts: Sequence[str], normalize: bool) -> list[str]:
    """Check an in-memory corpus (a list of strings) and apply the text normalisation.

    Each text becomes what the models read (:func:`adrecall.textnorm.model_text`); blank
    texts are dropped. A bare string or a path is refused: read corpus files with
    :func:`read_texts` first.
    """
    if isinstance(texts, (str, Path)):
        raise TypeError(
            f"expected a list of texts, got {type(texts).__name__} {str(texts)[:60]!r}; "
            "read corpus files with domain_adapt.corpus.read_texts(paths) first"
        )
    prepared: list[str] = []
    for row, value in enumerate(texts):
        if not isinstance(value, str):
            raise TypeError(f"text at row {row} is a {type(value).__name__}; texts must be strings")
        text = model_text(value, normalize)
        if text:
            prepared.append(text)
    if not prepared:
        raise ValueError("the corpus holds no non-empty text")
    return prepared
