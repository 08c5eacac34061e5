"""Pieces shared by pre-training and distillation: the start of a run (:func:`start_run`:
corpus, held-out split, fingerprint, output folder and the checkpoint to resume), the batch
order, the optimiser step and parameter groups, the loss history (:class:`LossLog`), and the
resume checkpoint (safetensors + JSON, never pickle). The learning-rate schedule is
:mod:`adrecall.lr_schedule`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from adrecall import resume_checkpoint
from adrecall.folders import ADAPTED_MODEL
from adrecall.models import resolve_model_dir, weights_sha256

_NOT_IN_FINGERPRINT = {
    "progress", "overwrite", "keep_checkpoint", "checkpoint_every", "eval_batch_size", "threads",
    "teacher_batch_size", "teacher_threads",
}
"""Settings that change neither the result nor its resumability (speed and output only)."""


@dataclass
class RunStart:
    """What a pre-training or distillation run knows once its inputs are checked."""

    started: float
    source: Path
    train_texts: list[str]
    held_texts: list[str]
    out_dir: Path
    fingerprint: dict
    """What a checkpoint must match to be resumed: settings, source weights, texts."""
    checkpoint: Path | None
    """The checkpoint to resume (same fingerprint), or None for a fresh run."""


def start_run(
    texts: Sequence[str], model: str | Path | None, out: str | Path, config: Any,
    **fingerprint_extra: Any,
) -> RunStart:
    """Common start of :func:`~domain_adapt.pretraining.pretrain` and
    :func:`~domain_adapt.distillation.distill`: threads, corpus preparation, the held-out split,
    the run's fingerprint (settings, source weights, texts, ``fingerprint_extra``) and the
    output folder with the checkpoint to resume."""
    from domain_adapt.corpus import prepare_texts, texts_sha256

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    corpus = prepare_texts(texts, config.normalize_text)
    source = resolve_model_dir(model)
    train_texts, held_texts = split_heldout(
        corpus, config.heldout_fraction, config.max_heldout, config.seed
    )
    if not train_texts:
        raise ValueError("no training texts remain after the held-out split; give more texts")
    fingerprint = {
        "settings": {k: v for k, v in asdict(config).items() if k not in _NOT_IN_FINGERPRINT},
        "source": str(source),
        "source_weights": weights_sha256(source),
        "texts": texts_sha256(corpus),
        **fingerprint_extra,
    }
    out_dir = Path(out)
    checkpoint = resume_checkpoint.prepare_resumable_out(
        out_dir, ADAPTED_MODEL, fingerprint, overwrite=config.overwrite, inputs=(source,)
    )
    return RunStart(started, source, train_texts, held_texts, out_dir, fingerprint, checkpoint)


def split_heldout(
    texts: Sequence[str], fraction: float, max_count: int, seed: int
) -> tuple[list[str], list[str]]:
    """Deterministic (seeded) split into training texts and a held-out slice of
    ``min(max_count, fraction × len(texts))`` texts (kept in corpus order)."""
    count = min(max_count, int(len(texts) * fraction))
    order = np.random.default_rng(seed).permutation(len(texts))
    held = set(order[:count].tolist())
    train = [t for i, t in enumerate(texts) if i not in held]
    return train, [texts[i] for i in sorted(held)]


def parameter_groups(model: nn.Module, weight_decay: float, lr: float) -> list[dict]:
    """AdamW groups: weight decay on weight matrices, none on biases and LayerNorm weights."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "lr": lr, "base_lr": lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr, "base_lr": lr},
    ]


def save_checkpoint(
    out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> Path:
    """Write ``out_dir/checkpoint`` atomically (:mod:`adrecall.resume_checkpoint`), the model
    as one ``model.safetensors``."""
    return resume_checkpoint.save_checkpoint(
        out_dir, lambda folder: save_model(model, str(folder / "model.safetensors")), optimizer, state
    )


def restore_checkpoint(checkpoint: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Load weights, optimizer and RNG state from ``checkpoint``; return its JSON state."""
    load_model(model, str(checkpoint / "model.safetensors"))
    return resume_checkpoint.restore_training_state(checkpoint, optimizer)


def batch_rows(step: int, steps_per_epoch: int, n_rows: int, batch_size: int, seed: int) -> np.ndarray:
    """Rows of the batch at ``step``: a seeded permutation per epoch, so a resumed run sees
    exactly the batches a whole run would."""
    epoch, position = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_rows)
    return order[position * batch_size : (position + 1) * batch_size]


def optimizer_step(
    loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, max_grad_norm: float
) -> float:
    """Backward, clip the gradient norm, step and clear; returns the loss as a float."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


@dataclass
class LossLog:
    """Every step's training loss, plus a curve of window means (about 200 points a run),
    kept in the resume checkpoint so a resumed run reports the same history."""

    log_every: int
    digits: int
    losses: list[float] = field(default_factory=list)
    curve: list[list[float]] = field(default_factory=list)
    _window: list[float] = field(default_factory=list)

    def add(self, step: int, value: float, last_step: bool) -> None:
        self.losses.append(round(value, self.digits))
        self._window.append(value)
        if step % self.log_every == 0 or last_step:
            self.curve.append([step, round(sum(self._window) / len(self._window), self.digits)])
            self._window = []

    def recent(self, n: int = 50) -> float:
        """Mean of the last ``n`` losses (for the progress bar)."""
        return float(np.mean(self.losses[-n:]))

    def first_and_last(self) -> tuple[float, float]:
        """Mean loss of the first and of the last tenth of the steps."""
        tenth = max(1, len(self.losses) // 10)
        return float(np.mean(self.losses[:tenth])), float(np.mean(self.losses[-tenth:]))
