"""Negatives added to BertSim's training pairs, so that it learns what it will rerank.

A BertSim trained only on judged candidates has never seen an easy negative, nor the
near-misses the first stage returns, and scores unrelated texts that share a query's template
near the top (see DESIGN.md). Two kinds are added, each as label 0:

* mined: for every training query, texts the first stage retrieves for it
  (:func:`adrecall.hard_negatives.mine_hard_negatives`), never one labelled for that query at
  any grade, nor an exact duplicate of one;
* random: texts of other queries' pairs, drawn with a fixed seed, with the same exclusion.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from adrecall.hard_negatives import MinedNegatives, text_key
from rerank.pairs import LabelledPairs


@dataclass
class AddedNegatives:
    """The enlarged pairs and what was added (recorded in the model's manifest)."""

    pairs: LabelledPairs
    stats: dict[str, object] = field(default_factory=dict)


def labelled_keys(pairs: LabelledPairs) -> dict[str, set[str]]:
    """For each query, the duplicate keys of every text labelled for it (any grade)."""
    keys: dict[str, set[str]] = {}
    for query, text in zip(pairs.queries, pairs.texts):
        keys.setdefault(query, set()).add(text_key(text))
    return keys


def add_negatives(
    pairs: LabelledPairs,
    *,
    mined: MinedNegatives | None = None,
    random_per_query: int = 0,
    seed: int = 0,
) -> AddedNegatives:
    """``pairs`` plus mined negatives (all that ``mined`` holds per query) and up to
    ``random_per_query`` random texts of other queries, each as label 0.

    No added text is labelled for its query, or a duplicate of one labelled for it, or added
    twice for the same query.
    """
    if random_per_query < 0:
        raise ValueError(f"random_per_query must be >= 0, got {random_per_query}")
    taken = labelled_keys(pairs)
    queries, texts = list(pairs.queries), list(pairs.texts)

    def add(query: str, text: str) -> bool:
        key = text_key(text)
        if key in taken[query]:
            return False
        taken[query].add(key)
        queries.append(query)
        texts.append(text)
        return True

    n_mined = n_random = 0
    if mined is not None:
        n_mined = sum(add(query, text) for query in taken for text in mined.for_query(query))
    if random_per_query:
        pool = list(dict.fromkeys(pairs.texts))
        rng = np.random.default_rng(seed)
        for query in list(taken):
            added = 0
            for i in rng.permutation(len(pool))[: 4 * random_per_query]:
                added += add(query, pool[i])
                if added == random_per_query:
                    break
            n_random += added
    extra = len(queries) - len(pairs)
    labels = np.concatenate([pairs.labels, np.zeros(extra, dtype=np.float32)])
    enlarged = replace(pairs, queries=queries, texts=texts, labels=labels)
    stats: dict[str, object] = {
        "rows_before": len(pairs), "mined": n_mined, "random": n_random,
        "rows_after": len(enlarged),
    }
    if mined is not None:
        stats["mining"] = dict(mined.stats)
    return AddedNegatives(enlarged, stats)
