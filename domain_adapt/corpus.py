"""A text corpus for domain adaptation: :func:`read_texts` reads ``.txt`` files (one text per
line) or tables (CSV/TSV/JSONL/Parquet, one or more text columns); it is
:func:`adrecall.text_files.read_texts`, normalising and de-duplicating by default.
:func:`prepare_texts` checks an in-memory corpus, :func:`texts_sha256` hashes one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from adrecall.text_files import read_texts  # noqa: F401  (re-exported: the corpus reader)
from adrecall.textnorm import model_text


def texts_sha256(texts: Iterable[str]) -> str:
    """Content hash of a list of texts (order matters), for caches and resume checks."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


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
