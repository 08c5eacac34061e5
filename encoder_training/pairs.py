"""Labelled ``(query, text, label)`` pairs for encoder training and diagnostics.

Read and checked by :mod:`adrecall.labelled_pairs` (CSV, TSV, JSONL, Parquet) before any
model loads; every error names the file, the data row (1-based, header not counted) and the fix.
Labels stay on the data's own scale: a pair is *relevant* when ``label >= threshold``
(default 1, QBQTC's 0/1/2 convention), and CoSENT only uses their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adrecall.labelled_pairs import PairFormat as PairColumns
from adrecall.labelled_pairs import (
    PairsError,
    labelled_pairs_from_lists,
    read_labelled_pairs,
)
from adrecall.textnorm import model_text

__all__ = [
    "PairColumns", "Pairs", "PairsError", "pairs_from_lists", "read_pairs", "split_by_query",
]


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
    """Read and validate a pairs table; ``role`` ("train", "dev", "labelled") starts messages.

    ``columns`` is :class:`adrecall.labelled_pairs.PairFormat` (here named ``PairColumns``):
    the query, text and label columns, positionally, and an optional declared label scale.
    """
    queries, texts, labels = read_labelled_pairs(path, columns, role=role)
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
    q, t, y = labelled_pairs_from_lists(queries, texts, labels, role=role, source=source)
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

