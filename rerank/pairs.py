"""Labelled (query, text, label) pairs: read from a table or lists, validated up front.

Every check runs before any model is loaded, and each failure has its own message naming the
file, the data row (1-based, header not counted) and the fix: missing columns, a dev file
whose columns do not match the training file, non-numeric labels, labels outside the declared
scale, empty queries or texts, and files without rows.

Labels are mapped linearly from the declared scale ``label_min..label_max`` onto BertSim's
0–2 score scale (e.g. STS-B's 0–5 becomes label × 0.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adrecall import labelled_pairs
from adrecall.checksums import file_sha256
from adrecall.labelled_pairs import (
    PairsError,  # noqa: F401  (re-exported: rerank.PairsError)
    labelled_pairs_from_lists,
    read_labelled_pairs,
)


@dataclass(frozen=True)
class PairFormat(labelled_pairs.PairFormat):
    """:class:`adrecall.labelled_pairs.PairFormat` with BertSim's default label scale (0–2),
    which a reranker's pairs must always declare, and its mapping onto the score scale."""

    label_min: float = 0.0
    label_max: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale is None:
            raise ValueError("BertSim pairs need a declared label scale (label_min, label_max)")

    def to_score_scale(self, labels: np.ndarray) -> np.ndarray:
        """Map labels from the declared scale onto 0–2."""
        from rerank.model import SCORE_MAX, SCORE_MIN

        span = float(self.label_max) - float(self.label_min)
        scaled = (labels - float(self.label_min)) / span * (SCORE_MAX - SCORE_MIN) + SCORE_MIN
        return scaled.astype(np.float32)


@dataclass
class LabelledPairs:
    """Validated pairs: raw texts, labels already on the 0–2 score scale, and provenance."""

    queries: list[str]
    texts: list[str]
    labels: np.ndarray
    source: str = "<memory>"
    sha256: str | None = None
    raw_label_range: tuple[float, float] = field(default=(0.0, 0.0))

    def __len__(self) -> int:
        return len(self.queries)

    def describe(self) -> dict:
        """Provenance for the manifest: source, checksum, rows, distinct queries."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rows": len(self),
            "queries": len(set(self.queries)),
            "raw_label_range": list(self.raw_label_range),
        }


def read_pairs(
    path: str | Path,
    pair_format: PairFormat | None = None,
    *,
    role: str = "train",
) -> LabelledPairs:
    """Read and validate a pairs table (CSV, TSV, JSONL or Parquet) with
    :func:`adrecall.labelled_pairs.read_labelled_pairs`.

    ``role`` ("train", "dev") starts every message; a dev file whose columns do not match the
    training layout is refused with a message that says so.
    """
    fmt = pair_format or PairFormat()
    path = Path(path)
    queries, texts, raw = read_labelled_pairs(path, fmt, role=role)
    return LabelledPairs(
        queries,
        texts,
        fmt.to_score_scale(raw),
        source=str(path.resolve()),
        sha256=file_sha256(path),
        raw_label_range=(float(raw.min()), float(raw.max())),
    )


def pairs_from_lists(
    queries: list[str], texts: list[str], labels: list[float] | np.ndarray,
    pair_format: PairFormat | None = None, *, role: str = "train", source: str = "<memory>",
) -> LabelledPairs:
    """Validate in-memory pairs with the same rules as :func:`read_pairs`
    (:func:`adrecall.labelled_pairs.labelled_pairs_from_lists`), labels mapped onto 0–2."""
    fmt = pair_format or PairFormat()
    q, t, y = labelled_pairs_from_lists(queries, texts, labels, fmt, role=role, source=source)
    return LabelledPairs(
        q, t, fmt.to_score_scale(y), source=source,
        raw_label_range=(float(y.min()), float(y.max())),
    )
