"""Text normalisation applied identically to ads and queries (see DESIGN.md).

URLs are dropped, every character that is not ``[]@#``, an ASCII letter or digit, or a CJK
ideograph (U+4E00..U+9FA5) becomes a space, and runs of white space collapse to one.

:func:`model_text` is the one rule every model input follows (bi-encoder, BertSim, encoder
training, domain adaptation): the normalised text, or the stripped raw text when
normalisation leaves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

# a URL runs over printable ASCII only, so Chinese text glued to it ("见www.a.cn官网") survives
_URL = re.compile(r"(?:https?://|ftp://|www\.)[\x21-\x7e]+", re.IGNORECASE)
_NOT_KEPT = re.compile(r"[^\[\]@#A-Za-z0-9\u4e00-\u9fa5]+")


def normalize_text(text: str) -> str:
    """Return ``text`` with URLs removed, other symbols blanked and white space collapsed."""
    text = _URL.sub(" ", text)
    text = _NOT_KEPT.sub(" ", text)
    return text.strip()


def model_text(text: str, normalize: bool = True) -> str:
    """The text a model reads: normalised when ``normalize`` is on, falling back to the
    stripped raw text when normalisation leaves nothing (an ad of emoji only, a title that is
    one URL, a script outside the kept set such as Cyrillic or Hangul). Every non-blank input
    is thus embedded and scored, never refused and never silently emptied."""
    stripped = text.strip()
    if not normalize:
        return stripped
    return normalize_text(text) or stripped


def check_texts(texts: object, what: str = "text") -> list[str]:
    """Return ``texts`` as a list of strings, or raise naming the first bad row.

    Accepts a single string (one row) or any ordered iterable of strings. ``None``,
    non-strings and strings that are empty or only white space are refused, because an empty
    input would embed to a meaningless vector that silently matches everything a little. A
    dict or set is refused too: a dict would yield its keys, a set rows in no fixed order.
    """
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, (Mapping, AbstractSet, bytes, bytearray)) or not isinstance(
        texts, Iterable
    ):
        raise TypeError(
            f"expected a string or a list of strings, got {type(texts).__name__}; pass a "
            f"list with one {what} string per row"
        )
    checked = list(texts)
    for row, value in enumerate(checked):
        if value is None:
            raise ValueError(f"{what} at row {row} is None; every {what} must be a non-empty string")
        if not isinstance(value, str):
            raise TypeError(
                f"{what} at row {row} is a {type(value).__name__} ({value!r}); "
                f"every {what} must be a string"
            )
        if not value.strip():
            raise ValueError(f"{what} at row {row} is empty; remove the row or give it text")
    return checked
