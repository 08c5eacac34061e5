"""Typed training settings and the names of the choices they allow (no torch import here,
so the command line can build its parser quickly)."""

from __future__ import annotations

from dataclasses import dataclass

from adrecall.settings_checks import check_at_least, check_choice, check_ints, check_positive
from adrecall.training_config import ResumableTrainingConfig

POOLINGS = ("auto", "pooler", "cls", "mean")
METRICS = ("spearman", "pearson", "mse", "ndcg@10")
MAX_LENGTH_QUANTILE = 0.99
"""With ``max_length=None`` a pair's token budget covers this share of the training pairs
whole (rounded up to a multiple of 8, at most what the encoder reads)."""


@dataclass(frozen=True)
class TrainConfig(ResumableTrainingConfig):
    """Every training choice, typed; recorded in the manifest. The model to start from is
    :func:`rerank.training.train_reranker`'s ``model`` argument (recorded beside these)."""

    epochs: int = 3
    max_length: int | None = None
    """Tokens per pair; ``None`` takes it from the training data (see ``MAX_LENGTH_QUANTILE``)."""
    encoder_lr: float = 5e-5
    """Measured (benchmarks/results/rerank_sweep_stsb.md): 1e-5, the origin notes' rate, leaves
    a MiniLM-sized BertSim undertrained in 1-3 CPU epochs."""
    head_lr_factor: float = 10.0
    new_vocab_lr_factor: float = 10.0
    """Embedding rows that a vocabulary extension added learn at this × ``encoder_lr``."""
    pooling: str = "auto"
    normalize: bool = True
    select_metric: str = "spearman"
    eval_every: int = 0
    """Dev evaluation every this many steps as well as at each epoch's end (0: epoch ends)."""
    patience: int = 0
    """Stop after this many dev evaluations without improvement (0: never stop early)."""
    mined_negatives: int = 0
    """Per training query, texts the first stage retrieves (not labelled for it) added as 0."""
    mining_candidates: int = 30
    """How deep the first stage is searched for mined negatives."""
    random_negatives: int = 0
    """Per training query, random texts of other queries added as label 0."""
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(self, "eval_every", "patience", "mined_negatives", "random_negatives",
                   minimum=0)
        check_ints(self, "mining_candidates")
        check_at_least(self, "mining_candidates", "mined_negatives", "search deeper or mine fewer")
        check_ints(self, "max_length", minimum=8, optional=True)
        check_positive(self, "encoder_lr", "head_lr_factor", "new_vocab_lr_factor")
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("select_metric", self.select_metric, METRICS)

    @property
    def head_lr(self) -> float:
        return self.encoder_lr * self.head_lr_factor
