"""Typed training settings and the names of the choices they allow (no torch import here,
so the command line can build its parser quickly)."""

from __future__ import annotations

from dataclasses import dataclass

POOLINGS = ("auto", "pooler", "cls")
PRECISIONS = ("fp32", "bf16")
METRICS = ("spearman", "pearson", "mse", "ndcg@10")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is ``"fp32"`` or ``"bf16"``, else raise naming it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


@dataclass(frozen=True)
class TrainConfig:
    """Every training choice, typed; recorded in the manifest."""

    model: str = "default"
    epochs: int = 3
    batch_size: int = 32
    max_length: int = 256
    encoder_lr: float = 1e-5
    head_lr_factor: float = 10.0
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    precision: str = "fp32"
    pooling: str = "auto"
    normalize: bool = True
    select_metric: str = "spearman"
    checkpoint_every: int = 200
    eval_batch_size: int = 64
    progress: bool = True
    overwrite: bool = False
    keep_checkpoint: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(
                f"checkpoint_every must be 0 (epoch ends only) or a positive number of steps, "
                f"got {self.checkpoint_every!r}"
            )
        for name in ("encoder_lr", "head_lr_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise ValueError(
                f"weight_decay must be >= 0 and max_grad_norm > 0, got {self.weight_decay!r} "
                f"and {self.max_grad_norm!r}"
            )
        check_precision(self.precision)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.select_metric not in METRICS:
            raise ValueError(f"select_metric must be one of {METRICS}, got {self.select_metric!r}")

    @property
    def head_lr(self) -> float:
        return self.encoder_lr * self.head_lr_factor
