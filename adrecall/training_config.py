"""The settings every trainer shares, as dataclass bases of the typed training configs.

- :class:`TrainingConfig`: what every trainer has (BertSim, encoder fine-tuning,
  pre-training, distillation): epochs, batch sizes, warm-up, seed, precision, output handling.
- :class:`ResumableTrainingConfig`: adds what adrecall's own training loops have (BertSim,
  pre-training, distillation; encoder fine-tuning runs sentence-transformers' trainer):
  weight decay, gradient clipping and resume checkpoints.

A subclass declares its own fields, and re-declares a shared one only to change its default;
its ``__post_init__`` checks its own fields after calling ``super().__post_init__()``. No
torch import here, so command lines build their parsers quickly.
"""

from __future__ import annotations

from dataclasses import dataclass

from adrecall.settings_checks import check_fraction, check_ints, check_precision


@dataclass(frozen=True)
class TrainingConfig:
    """The fields every trainer has; each is checked when the config is made."""

    epochs: int = 1
    batch_size: int = 32
    warmup_ratio: float = 0.1
    """Share of the optimiser steps over which the learning rate rises from 0."""
    seed: int = 42
    precision: str = "fp32"
    eval_batch_size: int = 64
    progress: bool = True
    overwrite: bool = False
    """Replace an output of the same kind already at ``out``."""
    keep_checkpoint: bool = False

    def __post_init__(self) -> None:
        check_ints(self, "epochs", "batch_size", "eval_batch_size")
        check_fraction("warmup_ratio", self.warmup_ratio)
        check_precision(self.precision)


@dataclass(frozen=True)
class ResumableTrainingConfig(TrainingConfig):
    """A trainer with adrecall's own loop: AdamW weight decay, gradient clipping and a resume
    checkpoint every ``checkpoint_every`` optimiser steps."""

    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    checkpoint_every: int = 500
    """Optimiser steps between mid-run resume checkpoints (0: none; BertSim also writes one at
    each epoch's end)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_decay < 0 or not self.max_grad_norm > 0:
            raise ValueError(
                f"weight_decay must be >= 0 and max_grad_norm > 0, got {self.weight_decay!r} "
                f"and {self.max_grad_norm!r}"
            )
        check_ints(self, "checkpoint_every", minimum=0)
