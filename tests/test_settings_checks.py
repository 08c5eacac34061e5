"""Every training config refuses a bad field with a message that names it (shared checks)."""

from __future__ import annotations

import pytest

from domain_adapt.config import DistillConfig, ExtendConfig, PretrainConfig
from encoder_training.finetune import TrainEncoderConfig
from rerank.config import TrainConfig


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PretrainConfig(batch_size=0), "batch_size must be a positive integer, got 0"),
        (lambda: PretrainConfig(max_steps=0), "max_steps must be a positive integer or None"),
        (lambda: PretrainConfig(max_length=4), r"max_length must be an integer >= 8, got 4"),
        (lambda: PretrainConfig(mlm_probability=0.0), r"mlm_probability must be in \(0, 1\)"),
        (lambda: PretrainConfig(checkpoint_every=-1), "checkpoint_every must be an integer >= 0"),
        (lambda: DistillConfig(projection="squash"), "projection must be one of"),
        (lambda: DistillConfig(lr=0.0), "lr must be positive, got 0.0"),
        (lambda: DistillConfig(threads=0), "threads must be a positive integer or None"),
        (lambda: ExtendConfig(max_word_length=1), "max_word_length must be an integer >= 2"),
        (lambda: ExtendConfig(words=-1), "words must be an integer >= 0"),
        (lambda: TrainConfig(warmup_ratio=1.0), r"warmup_ratio must be in \[0, 1\), got 1.0"),
        (lambda: TrainConfig(max_grad_norm=0.0), "max_grad_norm > 0"),
        (lambda: TrainConfig(precision="fp16"), "precision must be one of"),
        (lambda: TrainConfig(epochs=True), "epochs must be a positive integer, got True"),
        (lambda: TrainEncoderConfig(batch_size=1), r"batch_size must be at least 2 \(in-batch negatives\)"),
        (lambda: TrainEncoderConfig(dev_fraction=0.0), r"dev_fraction must be in \(0, 1\)"),
        (lambda: TrainEncoderConfig(max_steps=0), "max_steps must be a positive integer or None"),
    ],
)
def test_bad_setting_is_refused_by_name(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        make()
