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

from adrecall.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rerank.model": ("BertSim", "SCORE_MIN", "SCORE_MAX"),
        "rerank.scoring": ("RANK_KEYS",),
        "rerank.pairs": (
            "LabelledPairs",
            "PairFormat",
            "PairsError",
            "pairs_from_lists",
            "read_pairs",
        ),
        "rerank.config": ("TrainConfig",),
        "rerank.training": ("StepInfo", "TrainResult", "build_optimizer", "train_reranker"),
        "rerank.metrics": ("evaluate_scores",),
    },
)
