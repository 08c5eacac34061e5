"""The rows sentence-transformers trains on, built from labelled pairs: MNRL's
``anchor, positive, negative_1..n`` (mined negatives rotated over a query's rows, gaps filled
with random non-relevant training texts) and CoSENT's ``sentence1, sentence2, score``."""

from __future__ import annotations

from typing import Any

import numpy as np

from adrecall.hard_negatives import text_key
from encoder_training.pairs import Pairs, PairsError


def mnrl_rows(
    pairs: Pairs,
    negatives: dict[str, list[str]],
    n_negatives: int,
    relevance_threshold: float = 1.0,
    seed: int = 0,
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Columns ``anchor, positive, negative_1..n`` (one row per relevant pair).

    A query's mined negatives are rotated over its rows; missing ones are filled with random
    training texts that are not relevant to the query (never one of its relevant texts).
    """
    relevant = pairs.relevant_texts(relevance_threshold)
    relevant_keys = {q: {text_key(t) for t in ts} for q, ts in relevant.items()}
    pool = list(dict.fromkeys(pairs.texts))
    pool_keys = [text_key(t) for t in pool]
    rng = np.random.default_rng(seed)
    columns: dict[str, list[str]] = {"anchor": [], "positive": []}
    for j in range(n_negatives):
        columns[f"negative_{j + 1}"] = []
    stats = {"rows": 0, "mined_used": 0, "random_filled": 0}
    row_of_query: dict[str, int] = {}
    for query, text, label in zip(pairs.queries, pairs.texts, pairs.labels):
        if label < relevance_threshold:
            continue
        k = row_of_query.get(query, 0)
        row_of_query[query] = k + 1
        mined = [n for n in negatives.get(query, []) if text_key(n) not in relevant_keys[query]]
        chosen: list[str] = []
        for j in range(n_negatives):
            if len(mined) > j:
                chosen.append(mined[(k * n_negatives + j) % len(mined)])
                stats["mined_used"] += 1
        while len(chosen) < n_negatives:
            filler = _random_negative(pool, pool_keys, relevant_keys[query], set(chosen), rng)
            if filler is None:
                raise PairsError(
                    f"{pairs.source}: no text left to serve as a negative for query {query[:60]!r}; "
                    "give more varied pairs or fewer hard negatives"
                )
            chosen.append(filler)
            stats["random_filled"] += 1
        columns["anchor"].append(query)
        columns["positive"].append(text)
        for j, neg in enumerate(chosen):
            columns[f"negative_{j + 1}"].append(neg)
        stats["rows"] += 1
    return columns, stats


def _random_negative(
    pool: list[str], keys: list[str], banned: set[str], taken: set[str], rng: np.random.Generator
) -> str | None:
    for _ in range(50):
        i = int(rng.integers(len(pool)))
        if keys[i] not in banned and pool[i] not in taken:
            return pool[i]
    eligible = [p for p, k in zip(pool, keys) if k not in banned and p not in taken]
    return eligible[int(rng.integers(len(eligible)))] if eligible else None


def cosent_rows(pairs: Pairs) -> dict[str, list[Any]]:
    """Columns ``sentence1, sentence2, score`` (every pair, graded label as score)."""
    return {
        "sentence1": list(pairs.queries),
        "sentence2": list(pairs.texts),
        "score": [float(y) for y in pairs.labels],
    }
