"""Embedding many texts with little waste: length-sorted batches, tokenised ahead.

Texts are sorted by length so that each batch is padded only to its own longest member, and
the next batch is tokenised in a second thread while the model runs on the current one (the
fast tokenizer releases the GIL). Vectors come back in input order, with the number of real
(unpadded) tokens, so throughput can be reported in tokens per second as well as texts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


def encode_sorted(
    texts: list[str],
    tokenize: Callable[[list[str]], dict[str, Any]],
    embed: Callable[[dict[str, Any]], np.ndarray],
    batch_size: int,
) -> tuple[np.ndarray, int]:
    """``embed(tokenize(batch))`` over length-sorted batches of ``texts``: the vectors in
    input order (float32) and the count of real tokens (``attention_mask`` ones)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    vectors: np.ndarray | None = None
    tokens = 0
    for rows, features in _tokenized_ahead(batches, texts, tokenize):
        out = embed(features)
        if vectors is None:
            vectors = np.empty((len(texts), out.shape[1]), dtype=np.float32)
        vectors[rows] = out
        tokens += int(features["attention_mask"].sum())
    if vectors is None:
        raise ValueError("no texts to encode")
    return vectors, tokens


def _tokenized_ahead(
    batches: list[np.ndarray], texts: list[str], tokenize: Callable[[list[str]], dict[str, Any]]
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Each batch's rows and features; batch i+1 is tokenised while batch i is embedded."""
    def job(rows: np.ndarray) -> dict[str, Any]:
        return tokenize([texts[r] for r in rows])

    if len(batches) == 1:  # a query: no thread to start
        yield batches[0], job(batches[0])
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="adrecall-tokenize") as pool:
        pending = pool.submit(job, batches[0])
        for i, rows in enumerate(batches):
            features = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(job, batches[i + 1])
            yield rows, features
