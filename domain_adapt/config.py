"""Typed settings of the domain-adaptation steps (no torch import here, so the command line
builds its parser quickly)."""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("fp32", "bf16")
TEACHERS = ("use-multilingual",)
PROJECTIONS = ("keep", "drop")
PROJECTION_INITS = ("lstsq", "random")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is ``"fp32"`` or ``"bf16"``, else raise naming it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


@dataclass(frozen=True)
class ExtendConfig:
    """Settings of :func:`extend_vocabulary` (``adrecall extend-vocab``)."""

    min_char_count: int = 1
    """A missing CJK character is added if it occurs at least this often in the corpus."""
    max_chars: int | None = None
    """Add at most this many characters (the most frequent); ``None``: all that qualify."""
    words: int = 0
    """Add up to this many frequent jieba words (WoBERT); > 0 also switches WoBERT on."""
    min_word_count: int = 5
    """A jieba word must occur at least this often to be added."""
    max_word_length: int = 6
    """Longest word (in characters) considered."""
    init_std: float | None = None
    """Standard deviation of random rows; ``None``: the model config's ``initializer_range``."""
    seed: int = 0
    normalize_text: bool = True
    """Read the corpus through adrecall's text normalisation (as the encoders do)."""
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("min_char_count", "min_word_count", "max_word_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_word_length < 2:
            raise ValueError(f"max_word_length must be at least 2, got {self.max_word_length}")
        if self.max_chars is not None and (not isinstance(self.max_chars, int) or self.max_chars < 0):
            raise ValueError(f"max_chars must be >= 0 or None, got {self.max_chars!r}")
        if not isinstance(self.words, int) or self.words < 0:
            raise ValueError(f"words must be an integer >= 0, got {self.words!r}")
        if self.init_std is not None and not self.init_std > 0:
            raise ValueError(f"init_std must be positive (or None), got {self.init_std!r}")


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of :func:`pretrain` (``adrecall pretrain``)."""

    epochs: int = 1
    max_steps: int | None = None
    """Stop after this many optimiser steps (overrides ``epochs``)."""
    batch_size: int = 32
    max_length: int = 128
    lr: float = 5e-5
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mlm_probability: float = 0.15
    heldout_fraction: float = 0.02
    max_heldout: int = 2000
    seed: int = 42
    precision: str = "fp32"
    checkpoint_every: int = 500
    """Optimiser steps between resume checkpoints (0: none)."""
    eval_batch_size: int = 64
    normalize_text: bool = True
    progress: bool = True
    overwrite: bool = False
    keep_checkpoint: bool = False
    threads: int | None = None
    """torch CPU threads (``None``: torch's default). On a busy shared machine 1 can be faster."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "max_heldout"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ValueError(f"max_length must be an integer of at least 8, got {self.max_length!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability!r}")
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction!r}")
        if self.weight_decay < 0 or not self.max_grad_norm > 0:
            raise ValueError(
                f"weight_decay must be >= 0 and max_grad_norm > 0, got {self.weight_decay!r} "
                f"and {self.max_grad_norm!r}"
            )
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        check_precision(self.precision)


@dataclass(frozen=True)
class DistillConfig:
    """Settings of :func:`distill` (``adrecall distill``)."""

    teacher: str = "use-multilingual"
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 64
    max_length: int = 128
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    projection: str = "keep"
    projection_init: str = "lstsq"
    projection_fit_texts: int = 4096
    heldout_fraction: float = 0.02
    max_heldout: int = 1000
    seed: int = 42
    precision: str = "fp32"
    checkpoint_every: int = 500
    eval_batch_size: int = 128
    teacher_batch_size: int = 256
    teacher_threads: int = 2
    normalize_text: bool = True
    progress: bool = True
    overwrite: bool = False
    keep_checkpoint: bool = False
    threads: int | None = None
    """torch CPU threads for the student (``None``: torch's default)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "max_heldout",
                     "teacher_batch_size", "teacher_threads", "projection_fit_texts"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ValueError(f"max_length must be an integer of at least 8, got {self.max_length!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction!r}")
        if self.weight_decay < 0 or not self.max_grad_norm > 0:
            raise ValueError(
                f"weight_decay must be >= 0 and max_grad_norm > 0, got {self.weight_decay!r} "
                f"and {self.max_grad_norm!r}"
            )
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {self.projection!r}")
        if self.projection_init not in PROJECTION_INITS:
            raise ValueError(
                f"projection_init must be one of {PROJECTION_INITS}, got {self.projection_init!r}"
            )
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        check_precision(self.precision)
