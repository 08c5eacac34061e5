"""Labelled ``(query, text, label)`` pairs for encoder training and diagnostics.

Read through :mod:`adrecall.tables` (CSV, TSV, JSONL, Parquet) and checked before any model
loads; every error names the file, the data row (1-based, header not counted) and the fix.
Labels stay on the data's own scale: a pair is *relevant* when ``label >= threshold``
(default 1, QBQTC's 0/1/2 convention), and CoSENT only uses their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adrecall.labelled_pairs import (
    PairsError,
    check_pair_lengths,
    read_pairs_table,
    validate_pairs_frame,
)
from adrecall.tables import TableError, require_columns
from adrecall.textnorm import model_text


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
        """The same pairs as the models read them (:func:`adrecall.textnorm.model_text`)."""
        return Pairs([model_text(q) for q in self.queries], [model_text(t) for t in self.texts],
                     self.labels.copy(), self.source)

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
    queries, texts, labels = read_pairs_table(path, cols.names, f"{role} pairs {path}")
    return Pairs(queries, texts, labels, str(path))


def pairs_from_lists(
    queries: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[float] | np.ndarray,
    *,
    role: str = "train",
    source: str = "<memory>",
) -> Pairs:
    """Validate in-memory pairs with the same rules as :func:`read_pairs`."""
    check_pair_lengths(queries, texts, labels, f"{role} pairs {source}")
    cols = PairColumns()
    frame = pd.DataFrame({cols.query: list(queries), cols.text: list(texts), cols.label: list(labels)})
    q, t, y = validate_pairs_frame(frame, cols.names, f"{role} pairs {source}")
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

