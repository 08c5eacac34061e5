"""Labelled ``(query, text, label)`` pairs for encoder training and diagnostics.

Read through :mod:`adrecall.tables` (CSV, TSV, JSONL, Parquet) and checked before any model
loads; every error names the file, the row (0-based data row, header not counted) and the fix.
Labels stay on the data's own scale: a pair is *relevant* when ``label >= threshold``
(default 1, QBQTC's 0/1/2 convention), and CoSENT only uses their order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adrecall.tables import TableError, iter_table_chunks, require_columns
from adrecall.textnorm import normalize_text


class PairsError(ValueError):
    """Labelled pairs cannot be used as given; the message names the file, row and a fix."""


@dataclass(frozen=True)
class PairColumns:
    """Which table columns hold the query, the ad text and the graded label."""

    query: str = "query"
    text: str = "text"
    label: str = "label"

    def __post_init__(self) -> None:
        names = [self.query, self.text, self.label]
        if len(set(names)) != 3:
            raise ValueError(f"query, text and label columns must differ, got {names}")

    @property
    def names(self) -> list[str]:
        return [self.query, self.text, self.label]


@dataclass
class Pairs:
    """Validated pairs: parallel lists of queries and texts, float labels, and the source."""

    queries: list[str]
    texts: list[str]
    labels: np.ndarray
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Pairs:
        """The pairs at ``rows``, in that order."""
        rows = [int(r) for r in rows]
        return Pairs(
            [self.queries[r] for r in rows],
            [self.texts[r] for r in rows],
            self.labels[rows] if rows else np.zeros(0),
            self.source,
        )

    def relevant_texts(self, threshold: float = 1.0) -> dict[str, list[str]]:
        """``{query: [texts labelled >= threshold]}`` in file order (queries without any absent)."""
        out: dict[str, list[str]] = {}
        for query, text, label in zip(self.queries, self.texts, self.labels):
            if label >= threshold:
                out.setdefault(query, []).append(text)
        return out

    def normalized(self) -> Pairs:
        """The same pairs with :func:`adrecall.textnorm.normalize_text` applied to both sides.

        Raises naming the row when a query or text is empty after normalisation.
        """
        queries, texts = [], []
        for row, (q, t) in enumerate(zip(self.queries, self.texts)):
            nq, nt = normalize_text(q), normalize_text(t)
            for raw, clean, what in ((q, nq, "query"), (t, nt, "text")):
                if not clean:
                    raise PairsError(
                        f"{self.source}: row {row} {what} {raw[:60]!r} is empty after text "
                        "normalisation (only symbols or URLs); give it words, drop the row, or "
                        "turn text normalisation off"
                    )
            queries.append(nq)
            texts.append(nt)
        return Pairs(queries, texts, self.labels.copy(), self.source)

    def describe(self, threshold: float = 1.0) -> dict[str, object]:
        """Counts for reports: rows, distinct queries, relevant pairs, label range."""
        return {
            "source": self.source,
            "rows": len(self),
            "queries": len(set(self.queries)),
            "relevant_pairs": int((self.labels >= threshold).sum()),
            "label_min": float(self.labels.min()) if len(self) else None,
            "label_max": float(self.labels.max()) if len(self) else None,
        }


def read_pairs(
    path: str | Path, columns: PairColumns | None = None, *, role: str = "train"
) -> Pairs:
    """Read and validate a pairs table; ``role`` ("train", "dev", "labelled") starts messages."""
    cols = columns or PairColumns()
    path = Path(path)
    try:
        require_columns(path, cols.names)
    except TableError as exc:
        raise PairsError(
            f"{role} pairs: {exc} (options --query-column/--text-column/--label-column)"
        ) from exc
    queries: list[str] = []
    texts: list[str] = []
    labels: list[np.ndarray] = []
    for chunk in iter_table_chunks(path, columns=cols.names):
        q, t, y = _validate_chunk(chunk, cols, f"{role} pairs {path}")
        queries += q
        texts += t
        labels.append(y)
    if not queries:
        raise PairsError(f"{role} pairs {path} hold no rows; give it labelled pairs")
    return Pairs(queries, texts, np.concatenate(labels), str(path))


def pairs_from_lists(
    queries: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[float] | np.ndarray,
    *,
    role: str = "train",
    source: str = "<memory>",
) -> Pairs:
    """Validate in-memory pairs with the same rules as :func:`read_pairs`."""
    if not (len(queries) == len(texts) == len(labels)):
        raise PairsError(
            f"{role} pairs: {len(queries)} queries, {len(texts)} texts and {len(labels)} labels; "
            "give one of each per pair"
        )
    if not len(queries):
        raise PairsError(f"{role} pairs {source}: no rows; give labelled pairs")
    cols = PairColumns()
    frame = pd.DataFrame({cols.query: list(queries), cols.text: list(texts), cols.label: list(labels)})
    q, t, y = _validate_chunk(frame, cols, f"{role} pairs {source}")
    return Pairs(q, t, y, source)


def split_by_query(pairs: Pairs, dev_fraction: float, seed: int = 0) -> tuple[Pairs, Pairs]:
    """Split into (train, dev) so that no query appears in both; ~``dev_fraction`` of queries."""
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be between 0 and 1 (exclusive), got {dev_fraction}")
    unique = list(dict.fromkeys(pairs.queries))
    if len(unique) < 2:
        raise PairsError(
            f"{pairs.source}: only {len(unique)} distinct query, so no dev split by query is "
            "possible; give a dev file (--dev-pairs) or more queries"
        )
    rng = np.random.default_rng(seed)
    n_dev = min(len(unique) - 1, max(1, round(len(unique) * dev_fraction)))
    dev_queries = {unique[i] for i in rng.permutation(len(unique))[:n_dev]}
    dev_rows = [i for i, q in enumerate(pairs.queries) if q in dev_queries]
    train_rows = [i for i, q in enumerate(pairs.queries) if q not in dev_queries]
    return pairs.subset(train_rows), pairs.subset(dev_rows)


_SPACES = re.compile(r"\s+")


def text_key(text: str) -> str:
    """Key under which two ad texts count as exact duplicates: normalised, case-folded."""
    return _SPACES.sub(" ", normalize_text(text)).strip().casefold()


def _validate_chunk(
    chunk: pd.DataFrame, cols: PairColumns, where: str
) -> tuple[list[str], list[str], np.ndarray]:
    for column in (cols.query, cols.text):
        for row, value in chunk[column].items():
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
    raw = chunk[cols.label]
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.astype(float))
    if bad.any():
        row = bad.idxmax()
        raise PairsError(
            f"{where}: row {row} label {raw[row]!r} in column {cols.label!r} is not a number; "
            "labels must be numbers such as 0/1/2 (relevant = label >= 1 by default)"
        )
    return (
        chunk[cols.query].tolist(),
        chunk[cols.text].tolist(),
        numeric.to_numpy(dtype=np.float64),
    )
