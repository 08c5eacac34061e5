"""Batched inference for BertSim: length-sorted batches with dynamic padding.

Pairs are tokenised once without padding, sorted by length (longest first) and cut into batches
that are padded only to their own longest member, so a batch of short ads never pays for one
long ad. Scores come back in input order. ``rank_scores`` is the thin sort that ``rank()`` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from adrecall.textnorm import check_texts

if TYPE_CHECKING:
    from rerank.model import BertSim

RANK_KEYS = ("corpus_id", "score", "text")
_CHUNK_PAIRS = 8192  # tokenise at most this many pairs at once to bound memory


def score_query(model: BertSim, query: str, texts: list[str]) -> np.ndarray:
    """Scores of ``texts`` against one ``query`` (float32, input order)."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    check_texts(query, what="query")
    texts = check_texts(texts, what="text")
    return score_pairs(model, [query] * len(texts), texts, checked=True)


def score_pairs(
    model: BertSim,
    queries: list[str],
    texts: list[str],
    *,
    batch_size: int | None = None,
    checked: bool = False,
) -> np.ndarray:
    """Scores of (query, text) pairs on the 0–2 scale, float32, in input order.

    Leaves the model in eval mode, so that concurrent calls never disturb each other.
    """
    if not checked:
        queries = check_texts(queries, what="query")
        texts = check_texts(texts, what="text")
    if len(queries) != len(texts):
        raise ValueError(f"{len(queries)} queries but {len(texts)} texts; give one per pair")
    batch_size = batch_size or model.batch_size
    scores = np.empty(len(texts), dtype=np.float32)
    # Eval mode is left on: switching back to training mode afterwards would turn dropout on
    # under another thread still scoring (a training loop calls model.train() itself).
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), _CHUNK_PAIRS):
            stop = min(start + _CHUNK_PAIRS, len(texts))
            pairs = model.encode_pairs(queries[start:stop], texts[start:stop])
            order = np.argsort(-pairs.lengths(), kind="stable")
            for b in range(0, len(order), batch_size):
                rows = order[b : b + batch_size]
                scores[start + rows] = model.infer(model.collate(pairs, rows)).numpy()
    return scores


def rank_scores(scores: np.ndarray, texts: list[str], top_k: int | None = None) -> list[dict]:
    """Sort scored texts best first; ties keep input order. Keys: corpus_id, score, text."""
    scores = np.asarray(scores)
    if scores.ndim != 1 or len(scores) != len(texts):
        raise ValueError(f"{scores.shape} scores for {len(texts)} texts; give one score per text")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return [{"corpus_id": int(i), "score": float(scores[i]), "text": texts[i]} for i in order]
