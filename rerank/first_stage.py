"""What BertSim training takes from the first stage it will rerank: negatives mined from that
stage's results, and the weight that fuses its scores with BertSim's, chosen on dev.

The first stage is an object (a :class:`retrieval.Retriever` in practice), so ``rerank``
never imports ``retrieval``: it needs ``search(queries, k)`` for mining, ``score_pairs(queries,
texts)`` for first-stage scores of judged pairs, and ``describe()`` for the manifest.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from adrecall.hard_negatives import mine_hard_negatives
from adrecall.score_fusion import choose_weight
from rerank.config import TrainConfig
from rerank.metrics import evaluate_scores
from rerank.negatives import AddedNegatives, add_negatives
from rerank.pairs import LabelledPairs

logger = logging.getLogger(__name__)


class FirstStage(Protocol):
    """The retriever whose candidates BertSim will rerank."""

    def search(self, queries: list[str], k: int = 10) -> list[list[Any]]: ...

    def score_pairs(self, queries: list[str], texts: list[str]) -> np.ndarray: ...

    def describe(self) -> dict: ...


def check_first_stage(config: TrainConfig, first_stage: FirstStage | None) -> None:
    """Refuse, before any work, settings that need a first stage when none is given."""
    if config.mined_negatives and first_stage is None:
        raise ValueError(
            f"mined_negatives={config.mined_negatives} needs the first stage to mine from: "
            "pass the index (--index IDX / first_stage=Retriever.load(IDX))"
        )


def training_negatives(
    pairs: LabelledPairs, first_stage: FirstStage | None, config: TrainConfig
) -> AddedNegatives:
    """``pairs`` with the negatives ``config`` asks for: ``mined_negatives`` per query from
    the first stage's top ``mining_candidates`` (never a text labelled for that query, at any
    grade) and ``random_negatives`` per query from other queries' texts."""
    check_first_stage(config, first_stage)
    mined = None
    if config.mined_negatives and first_stage is not None:
        mined = mine_hard_negatives(
            first_stage, pairs, n_negatives=config.mined_negatives,
            candidates=config.mining_candidates, relevance_threshold=float("-inf"),
            progress=config.progress,
        )
    return add_negatives(pairs, mined=mined, random_per_query=config.random_negatives,
                         seed=config.seed)


def fusion_on_dev(
    rerank_scores: np.ndarray, dev: LabelledPairs, first_stage: FirstStage
) -> dict:
    """The weight of first-stage scores in the fused order (see :mod:`adrecall.score_fusion`)
    that maximises dev nDCG@10 over each dev query's judged candidates, with the metric at
    every weight tried, for the reranker's manifest."""
    first = np.asarray(first_stage.score_pairs(list(dev.queries), list(dev.texts)))

    def ndcg(scores: np.ndarray) -> float:
        return float(evaluate_scores(dev.queries, scores, dev.labels)["ndcg@10"])

    weight, by_weight = choose_weight(dev.queries, first, rerank_scores, ndcg)
    flat = len(set(by_weight.values())) == 1
    if flat:
        logger.warning("every fusion weight scores the same dev nDCG@10 (dev has one judged "
                       "candidate per query?); the stored weight %s is no choice", weight)
    return {
        "weight": weight,
        "flat": flat,
        "chosen_on": "dev nDCG@10 over each dev query's judged candidates",
        "dev_ndcg@10_by_weight": {f"{w:g}": round(v, 5) for w, v in by_weight.items()},
        "first_stage": first_stage.describe(),
    }
