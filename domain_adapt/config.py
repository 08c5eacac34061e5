"""Typed settings of the domain-adaptation steps (no torch import here, so the command line
builds its parser quickly)."""

from __future__ import annotations

from dataclasses import dataclass

from adrecall.settings_checks import check_choice, check_fraction, check_ints, check_positive
from adrecall.training_config import ResumableTrainingConfig

TEACHERS = ("use-multilingual",)
PROJECTIONS = ("keep", "drop")
PROJECTION_INITS = ("lstsq", "random")


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
        check_ints(self, "min_char_count", "min_word_count")
        check_ints(self, "max_word_length", minimum=2)
        check_ints(self, "max_chars", minimum=0, optional=True)
        check_ints(self, "words", minimum=0)
        if self.init_std is not None and not self.init_std > 0:
            raise ValueError(f"init_std must be positive (or None), got {self.init_std!r}")


@dataclass(frozen=True)
class AdaptTrainingConfig(ResumableTrainingConfig):
    """The settings pre-training and distillation share (their own loops over a text corpus
    with a held-out share)."""

    max_steps: int | None = None
    """Stop after this many optimiser steps (overrides ``epochs``)."""
    max_length: int = 128
    lr: float = 5e-5
    heldout_fraction: float = 0.02
    max_heldout: int = 2000
    normalize_text: bool = True
    threads: int | None = None
    """torch CPU threads (``None``: torch's default). On a busy shared machine 1 can be faster."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(self, "max_heldout")
        check_ints(self, "max_steps", "threads", optional=True)
        check_ints(self, "max_length", minimum=8)
        check_positive(self, "lr")
        check_fraction("heldout_fraction", self.heldout_fraction)


@dataclass(frozen=True)
class PretrainConfig(AdaptTrainingConfig):
    """Settings of :func:`pretrain` (``adrecall pretrain``)."""

    warmup_ratio: float = 0.06
    mlm_probability: float = 0.15

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("mlm_probability", self.mlm_probability, allow_zero=False)


@dataclass(frozen=True)
class DistillConfig(AdaptTrainingConfig):
    """Settings of :func:`distill` (``adrecall distill``)."""

    teacher: str = "use-multilingual"
    batch_size: int = 64
    max_heldout: int = 1000
    eval_batch_size: int = 128
    projection: str = "keep"
    projection_init: str = "lstsq"
    projection_fit_texts: int = 4096
    teacher_batch_size: int = 256
    teacher_threads: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(self, "teacher_batch_size", "teacher_threads", "projection_fit_texts")
        check_choice("projection", self.projection, PROJECTIONS)
        check_choice("projection_init", self.projection_init, PROJECTION_INITS)
