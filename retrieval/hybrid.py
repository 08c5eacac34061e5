"""Hybrid first stage: fuse the dense and the lexical candidate lists of one query.

The dense side's share is ``d = (1 − w) · (1 − u)²`` and the lexical side's ``1 − d``, where
``w`` is the lexical weight (0..1, default 0.5) and ``u`` the share of the query's characters
the dense model cannot read (:meth:`retrieval.encoder.Encoder.unreadable_share`; 0 for text in
the model's language, so there the shares are simply ``1 − w`` and ``w``). Two rules
(``fusion``):

* ``"rrf"`` (default), reciprocal rank fusion: ``d / (c + rank_dense) + (1 − d) / (c +
  rank_lexical)`` with ranks from 1 and ``c = 60``; a list that did not return the ad adds
  nothing. At ``w = 0.5, u = 0`` this is plain RRF (halved), which needs no score calibration.
* ``"weighted"``: ``d · minmax(dense) + (1 − d) · minmax(lexical)``, each side min-max scaled
  over its own list; an ad one list did not return gets 0 from that side.

Ties are broken by the better dense rank, then the better lexical rank. Why ``u``: the default
English MiniLM reads 244 CJK characters, so on a Chinese query its list is close to noise, and
fusing it at full weight drags the result below BM25 alone; a query it reads in full is fused as
given. Choose ``w`` on judged dev queries (:func:`retrieval.evaluation.choose_lexical_weight`).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from adrecall.score_fusion import minmax

MODES = ("dense", "lexical", "hybrid")
"""``search`` modes: FAISS alone, BM25 alone, or both fused."""
HYBRID_FUSIONS = ("rrf", "weighted")
RRF_C = 60


@dataclass(frozen=True)
class Candidate:
    """One ad (``row`` of the ads table) in a first-stage list, with where each list put it."""

    row: int
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None

    @property
    def sources(self) -> dict[str, int]:
        """The lists that found this ad and its rank (from 1) in each."""
        ranks = {"dense": self.dense_rank, "lexical": self.lexical_rank}
        return {name: rank for name, rank in ranks.items() if rank is not None}


def check_hybrid(mode: str, fusion: str, lexical_weight: object) -> float:
    """Refuse an unknown mode or fusion rule and a weight outside [0, 1]; the weight as float."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if fusion not in HYBRID_FUSIONS:
        raise ValueError(f"hybrid fusion must be one of {HYBRID_FUSIONS}, got {fusion!r}")
    if isinstance(lexical_weight, bool) or not isinstance(lexical_weight, numbers.Real) or not (
        0 <= float(lexical_weight) <= 1
    ):
        raise ValueError(f"lexical weight must be a number in [0, 1], got {lexical_weight!r}")
    return float(lexical_weight)


def single_list(hits: Sequence[tuple[int, float]], side: str) -> list[Candidate]:
    """One side's ``(row, score)`` list, best first, as candidates (``side``: dense/lexical)."""
    return [
        Candidate(row, score, **{f"{side}_score": score, f"{side}_rank": rank})
        for rank, (row, score) in enumerate(hits, start=1)
    ]


def fuse_lists(
    dense: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    fusion: str = "rrf",
    lexical_weight: float = 0.5,
    unreadable: float = 0.0,
    c: float = RRF_C,
) -> list[Candidate]:
    """Both sides' ``(row, score)`` lists (each best first) fused into one, best first;
    ``unreadable`` is the query's ``u`` (see the module docstring)."""
    check_hybrid("hybrid", fusion, lexical_weight)
    if not 0 <= unreadable <= 1:
        raise ValueError(f"unreadable must be a share in [0, 1], got {unreadable!r}")
    w = float(lexical_weight)
    dense_share = (1.0 - w) * (1.0 - unreadable) ** 2
    found: dict[int, dict[str, float | int]] = {}
    for side, hits in (("dense", dense), ("lexical", lexical)):
        scaled = minmax([score for _, score in hits]) if fusion == "weighted" else None
        for rank, (row, score) in enumerate(hits, start=1):
            entry = found.setdefault(int(row), {})
            entry[f"{side}_score"], entry[f"{side}_rank"] = float(score), rank
            share = 1.0 - dense_share if side == "lexical" else dense_share
            part = share / (c + rank) if scaled is None else share * float(scaled[rank - 1])
            entry["score"] = float(entry.get("score", 0.0)) + part
    candidates = [Candidate(row, **entry) for row, entry in found.items()]  # type: ignore[arg-type]
    far = len(dense) + len(lexical) + 1
    candidates.sort(key=lambda x: (-x.score, x.dense_rank or far, x.lexical_rank or far, x.row))
    return candidates
