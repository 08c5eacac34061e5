"""Typed training settings and the names of the choices they allow (no torch import here,
so the command line can build its parser quickly)."""

from __future__ import annotations

from dataclasses import dataclass

from adrecall.settings_checks import (
    check_choice,
    check_ints,
    check_optimizer,
    check_positive,
    check_precision,
)

POOLINGS = ("auto", "pooler", "cls", "mean")
METRICS = ("spearman", "pearson", "mse", "ndcg@10")
MAX_LENGTH_QUANTILE = 0.99
"""With ``max_length=None`` a pair's token budget covers this share of the training pairs
whole (rounded up to a multiple of 8, at most what the encoder reads)."""


@dataclass(frozen=True)
class TrainConfig:
    """Every training choice, typed; recorded in the manifest. The model to start from is
    :func:`rerank.training.train_reranker`'s ``model`` argument (recorded beside these)."""

    epochs: int = 3
    batch_size: int = 32
    max_length: int | None = None
    """Tokens per pair; ``None`` takes it from the training data (see ``MAX_LENGTH_QUANTILE``)."""
    encoder_lr: float = 5e-5
    """Measured (benchmarks/results/rerank_sweep_stsb.md): 1e-5, the origin notes' rate, leaves
    a MiniLM-sized BertSim undertrained in 1-3 CPU epochs."""
    head_lr_factor: float = 10.0
    new_vocab_lr_factor: float = 10.0
    """Embedding rows that a vocabulary extension added learn at this × ``encoder_lr``."""
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    precision: str = "fp32"
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
    eval_batch_size: int = 64
    progress: bool = True
    overwrite: bool = False
    keep_checkpoint: bool = False

    def __post_init__(self) -> None:
        check_ints(self, "epochs", "batch_size", "eval_batch_size")
        check_ints(self, "checkpoint_every", minimum=0)  # 0: checkpoints at epoch ends only
        check_ints(self, "eval_every", "patience", "mined_negatives", "random_negatives",
                   minimum=0)
        check_ints(self, "mining_candidates")
        if self.mining_candidates < self.mined_negatives:
            raise ValueError(
                f"mining_candidates ({self.mining_candidates}) must be at least mined_negatives "
                f"({self.mined_negatives}); search deeper or mine fewer"
            )
        check_ints(self, "max_length", minimum=8, optional=True)
        check_positive(self, "encoder_lr", "head_lr_factor", "new_vocab_lr_factor")
        check_optimizer(self)
        check_precision(self.precision)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("select_metric", self.select_metric, METRICS)

    @property
    def head_lr(self) -> float:
        return self.encoder_lr * self.head_lr_factor
