"""The one learning-rate schedule (adrecall.lr_schedule) and the training loops that use it:
BertSim training, domain-adaptive pre-training and distillation each run exactly its
multipliers, one per optimizer step, counted from step 1."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_WORDS

from adrecall.lr_schedule import lr_multiplier, set_lr, warmup_steps

TEXTS = [f"{a} {b} {c}" for a, b, c in itertools.product(TINY_WORDS[:4], TINY_WORDS[4:8], "xyz")]


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):  # type: ignore[no-untyped-def]
    """Tiny models on a shared 2-core machine: see conftest's torch_one_thread."""


def expected(total: int, warmup: int) -> list[float]:
    return [lr_multiplier(step, total, warmup) for step in range(1, total + 1)]


def test_warmup_peaks_at_the_last_warmup_step_and_the_last_step_reaches_zero() -> None:
    factors = expected(10, 2)
    assert factors[:3] == [0.5, 1.0, 7 / 8]  # step 1 learns; step 2 = warmup_steps is the peak
    assert max(factors) == 1.0 and factors.index(1.0) == 1
    assert factors[-1] == 0.0 and factors[-2] == 1 / 8
    assert all(a >= b for a, b in itertools.pairwise(factors[1:]))
    assert expected(4, 0) == [0.75, 0.5, 0.25, 0.0]  # no warm-up: decay from the first step
    assert expected(3, 3) == [1 / 3, 2 / 3, 1.0]  # all warm-up: never decays


def test_warmup_steps_round_up_the_ratio_of_optimizer_steps() -> None:
    assert warmup_steps(25, 0.1) == 3  # ceil(2.5)
    assert warmup_steps(10, 0.1) == 1
    assert warmup_steps(10, 0.0) == 0
    with pytest.raises(ValueError, match="0 <= ratio <= 1"):
        warmup_steps(10, 1.5)


def test_set_lr_scales_every_group_from_its_base_rate() -> None:
    optimizer = torch.optim.SGD([
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0, "base_lr": 2.0},
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0, "base_lr": 4.0},
    ])
    assert set_lr(optimizer, 0.25) == 0.5
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 1.0]


class _StepMultipliers:
    """Records ``lr / base_lr`` of the first parameter group before every optimizer step."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def __enter__(self) -> list[float]:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        def hook(optimizer, args, kwargs) -> None:  # type: ignore[no-untyped-def]
            group = optimizer.param_groups[0]
            self.seen.append(group["lr"] / group["base_lr"])

        self.handle = register_optimizer_step_pre_hook(hook)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


def test_bertsim_training_runs_the_schedule(tiny_model_dir: Path, tmp_path: Path) -> None:
    from rerank import TrainConfig, pairs_from_lists, train_reranker

    queries = [f"cheap {w}" for w in TINY_WORDS[:5] for _ in range(2)]
    texts = [f"{w} sale" if i % 2 else "blue bike" for i, w in enumerate(TINY_WORDS[:10])]
    labels = np.tile([2.0, 0.0], 5)
    pairs = pairs_from_lists(queries, texts, labels)  # 10 pairs: 3 steps per epoch of 4
    config = TrainConfig(epochs=2, batch_size=4, max_length=16,
                         encoder_lr=1e-3, warmup_ratio=0.3, seed=0, progress=False,
                         checkpoint_every=0)
    seen: list[float] = []
    train_reranker(pairs, tmp_path / "out", model=tiny_model_dir, config=config,
                   on_step=lambda info: seen.append(info.lrs["encoder"] / config.encoder_lr))
    assert seen == pytest.approx(expected(6, 2))  # warm-up ceil(0.3 × 6) = 2


def test_pretraining_runs_the_schedule(tiny_model_dir: Path, tmp_path: Path) -> None:
    from domain_adapt.config import PretrainConfig
    from domain_adapt.pretraining import pretrain

    config = PretrainConfig(max_steps=7, batch_size=8, lr=1e-3, warmup_ratio=0.3,
                            heldout_fraction=0.1, seed=0, progress=False, checkpoint_every=0)
    with _StepMultipliers() as seen:
        pretrain(TEXTS, tmp_path / "pt", model=tiny_model_dir, config=config)
    assert seen == pytest.approx(expected(7, 3))  # warm-up ceil(0.3 × 7) = 3


def test_distillation_runs_the_schedule(tiny_model_dir: Path, tmp_path: Path) -> None:
    from domain_adapt.config import DistillConfig
    from domain_adapt.distillation import distill

    class Teacher:
        name = "fake"

        def __call__(self, texts: list[str]) -> np.ndarray:
            rng = np.random.default_rng(len(texts))
            rows = rng.normal(size=(len(texts), 8))
            return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    config = DistillConfig(max_steps=5, batch_size=8, lr=1e-3, warmup_ratio=0.5,
                           heldout_fraction=0.1, progress=False, checkpoint_every=0,
                           projection_init="random")
    with _StepMultipliers() as seen:
        distill(TEXTS, tmp_path / "st", model=tiny_model_dir, config=config, teacher=Teacher())
    assert seen == pytest.approx(expected(5, 3))  # warm-up ceil(0.5 × 5) = 3
