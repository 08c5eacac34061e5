"""Hard negatives mined from a built index, for training the bi-encoder (MultipleNegatives-
RankingLoss) and BertSim alike: both learn what the first stage confuses with a relevant ad.

For each query of the labelled pairs, the index's top candidates are taken in rank order,
minus every ad the pairs label relevant for that query (``label >= threshold``) and minus every
ad whose text is an exact duplicate of such an ad (same text after adrecall's normalisation and
case folding, see :func:`text_key`), so a relevant ad never comes back as
a "negative" under another id. Ads labelled *irrelevant* for the query stay eligible: they are
the best negatives there are. Relevance is judged by text because training pairs carry texts,
not ad ids; pass ``relevant_ids`` too when the pairs do know the ids. The retriever and the
pairs are duck-typed (anything with ``search`` / ``queries, texts, labels``), so this ground
module imports neither ``retrieval`` nor a trainer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from adrecall.textnorm import model_text

_SPACES = re.compile(r"\s+")


class LabelledTexts(Protocol):
    """Pairs as both trainers hold them: parallel queries, texts and numeric labels."""

    queries: Sequence[str]
    texts: Sequence[str]
    labels: Sequence[float]


def text_key(text: str) -> str:
    """Key under which two ad texts count as exact duplicates: as the model reads them
    (:func:`adrecall.textnorm.model_text`), white space collapsed, case-folded."""
    return _SPACES.sub(" ", model_text(text)).strip().casefold()


@dataclass
class MinedNegatives:
    """``negatives[query]``: texts best first; ``stats``: what was seen and skipped."""

    negatives: dict[str, list[str]]
    stats: dict[str, int] = field(default_factory=dict)

    def for_query(self, query: str) -> list[str]:
        return self.negatives.get(query, [])


def mine_hard_negatives(
    retriever: object,
    pairs: LabelledTexts,
    *,
    n_negatives: int = 5,
    candidates: int = 30,
    relevance_threshold: float = 1.0,
    relevant_ids: Mapping[str, set[str]] | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> MinedNegatives:
    """Up to ``n_negatives`` hard negatives per query from the top ``candidates`` of the index.

    ``retriever`` is a :class:`retrieval.retriever.Retriever` (anything whose
    ``search(list_of_queries, k)`` returns per-query hits with ``.text`` and ``.ad_id``).
    ``relevant_ids`` optionally maps a query to ad ids that must be skipped as well. A
    ``relevance_threshold`` of 0 (or below every label) bans every text labelled for the query.
    """
    from tqdm.auto import tqdm

    if n_negatives < 1:
        raise ValueError(f"n_negatives must be at least 1, got {n_negatives}")
    if candidates < n_negatives:
        raise ValueError(
            f"candidates ({candidates}) must be at least n_negatives ({n_negatives}); "
            "search deeper or ask for fewer negatives"
        )
    forbidden: dict[str, set[str]] = {}
    for query, text, label in zip(pairs.queries, pairs.texts, pairs.labels):
        keys = forbidden.setdefault(query, set())
        if label >= relevance_threshold:
            keys.add(text_key(text))
    queries = list(forbidden)
    stats = {
        "queries": len(queries),
        "candidates_seen": 0,
        "skipped_relevant_text": 0,
        "skipped_relevant_id": 0,
        "skipped_repeated_text": 0,
        "negatives": 0,
        "queries_short_of_negatives": 0,
    }
    negatives: dict[str, list[str]] = {}
    starts = range(0, len(queries), batch_size)
    for start in tqdm(starts, desc="mining hard negatives", unit="batch", disable=not progress):
        batch = queries[start : start + batch_size]
        results = retriever.search(batch, k=candidates)  # type: ignore[attr-defined]
        for query, hits in zip(batch, results):
            banned = forbidden[query]
            banned_ids = set(relevant_ids.get(query, ())) if relevant_ids else set()
            seen: set[str] = set()
            chosen: list[str] = []
            for hit in hits:
                stats["candidates_seen"] += 1
                key = text_key(hit.text)
                if key in banned:
                    stats["skipped_relevant_text"] += 1
                    continue
                if str(hit.ad_id) in banned_ids:
                    stats["skipped_relevant_id"] += 1
                    continue
                if key in seen:  # the same ad text twice is one negative, not two
                    stats["skipped_repeated_text"] += 1
                    continue
                seen.add(key)
                chosen.append(hit.text)
                if len(chosen) == n_negatives:
                    break
            negatives[query] = chosen
            stats["negatives"] += len(chosen)
            stats["queries_short_of_negatives"] += len(chosen) < n_negatives
    return MinedNegatives(negatives, stats)
