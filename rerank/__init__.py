"""BertSim: a BERT cross-encoder that scores (query, ad) relevance on a 0–2 scale.

    from rerank import BertSim, train_reranker, TrainConfig, PairFormat
    result = train_reranker("train.csv", "models/bertsim", dev="dev.csv")
    model = BertSim.load("models/bertsim")
    model.score("running shoes", ["trail shoes sale", "car insurance"])  # np.ndarray, 0–2
    model.rank("running shoes", ads, top_k=10)  # [{"corpus_id", "score", "text"}, ...]

Any object with ``score(query, texts) -> np.ndarray`` can rerank in the retrieval pipeline.
Names are imported lazily, so ``import rerank`` (and the command line) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BertSim": "rerank.model",
    "SCORE_MIN": "rerank.model",
    "SCORE_MAX": "rerank.model",
    "RANK_KEYS": "rerank.scoring",
    "LabelledPairs": "rerank.pairs",
    "PairFormat": "rerank.pairs",
    "PairsError": "rerank.pairs",
    "pairs_from_lists": "rerank.pairs",
    "read_pairs": "rerank.pairs",
    "TrainConfig": "rerank.config",
    "StepInfo": "rerank.training",
    "TrainResult": "rerank.training",
    "build_optimizer": "rerank.training",
    "train_reranker": "rerank.training",
    "evaluate_scores": "rerank.metrics",
}

__all__ = [
    "RANK_KEYS",
    "SCORE_MAX",
    "SCORE_MIN",
    "BertSim",
    "LabelledPairs",
    "PairFormat",
    "PairsError",
    "StepInfo",
    "TrainConfig",
    "TrainResult",
    "build_optimizer",
    "evaluate_scores",
    "pairs_from_lists",
    "read_pairs",
    "train_reranker",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rerank' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
