"""Pieces shared by pre-training and distillation: the start of a run (:func:`start_run`:
corpus, held-out split, fingerprint, output folder and the checkpoint to resume) and the
training loop (:func:`train_steps`: the batch order, the optimiser step and parameter groups,
the loss history (:class:`LossLog`), the progress bar and the resume checkpoint, safetensors +
JSON, never pickle). The learning-rate schedule is :mod:`adrecall.lr_schedule`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
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


@dataclass
class TrainedSteps:
    """What :func:`train_steps` did: this run's loop and any earlier run it resumed."""

    steps: int
    steps_per_epoch: int
    units_seen: int
    """Units (tokens, texts: what ``batch_loss`` counts) trained on, earlier runs included."""
    run_units: int
    """Units this run trained on, in ``train_seconds``."""
    train_seconds: float
    wall_before: float
    """Wall time of the earlier runs this one resumed."""
    resumed_from: int | None
    heldout_before: Any
    """The held-out figure before any training (recorded by the first run)."""
    log: LossLog


def train_steps(
    run: RunStart, model: nn.Module, config: Any, *, rows: int, desc: str, digits: int,
    heldout: Callable[[], Any], batch_loss: Callable[[np.ndarray, int], tuple[torch.Tensor, int]],
    bar: tuple[str, str, str],
) -> TrainedSteps:
    """The training loop of pre-training and distillation, resumable.

    AdamW (:func:`parameter_groups`) over ``model`` on the warm-up/decay schedule of
    :mod:`adrecall.lr_schedule`, ``config.max_steps`` or ``config.epochs`` passes over
    ``rows`` training rows in :func:`batch_rows` order. ``run.checkpoint``, when there is one,
    is resumed; otherwise ``heldout()`` measures the model before training. Each step
    ``batch_loss(rows, step)`` gives the loss of those rows and how many units (tokens,
    texts) they hold; a resume checkpoint is written every ``config.checkpoint_every`` steps.
    ``bar`` names the progress bar's loss, its format and its rate: ``("loss", ".3f", "tok_s")``.
    """
    from tqdm.auto import tqdm

    from adrecall.lr_schedule import lr_multiplier, set_lr, warmup_steps

    steps_per_epoch = math.ceil(rows / config.batch_size)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    warmup = warmup_steps(total_steps, config.warmup_ratio)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay, config.lr))
    log = LossLog(log_every=max(1, total_steps // 200), digits=digits)
    step, units_seen, wall_before, resumed_from = 0, 0, 0.0, None
    if run.checkpoint is not None:
        state = restore_checkpoint(run.checkpoint, model, optimizer)
        step = resumed_from = int(state["step"])
        # checkpoints of earlier releases named these tokens_seen and heldout_loss_before
        units_seen = int(state.get("units_seen", state.get("tokens_seen", 0)))
        before = state["heldout_before"] if "heldout_before" in state else state["heldout_loss_before"]
        wall_before = float(state["wall_seconds"])
        log.curve, log.losses = state["loss_curve"], state["losses"]
    else:
        before = heldout()

    model.train()
    loss_label, loss_format, rate_label = bar
    progress = tqdm(total=total_steps, initial=step, desc=desc, unit="step",
                    disable=not config.progress, dynamic_ncols=True)
    run_start = time.perf_counter()
    run_units = 0
    while step < total_steps:
        batch = batch_rows(step, steps_per_epoch, rows, config.batch_size, config.seed)
        lr = set_lr(optimizer, lr_multiplier(step + 1, total_steps, warmup))
        loss, units = batch_loss(batch, step)
        value = optimizer_step(loss, model, optimizer, config.max_grad_norm)
        step += 1
        units_seen += units
        run_units += units
        log.add(step, value, step == total_steps)
        elapsed = time.perf_counter() - run_start
        progress.update(1)
        progress.set_postfix({loss_label: f"{log.recent():{loss_format}}", "lr": f"{lr:.1e}",
                              rate_label: f"{run_units / max(elapsed, 1e-9):.0f}"})
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < total_steps:
            save_checkpoint(run.out_dir, model, optimizer, {
                "fingerprint": run.fingerprint, "step": step, "units_seen": units_seen,
                "wall_seconds": wall_before + time.perf_counter() - run_start,
                "loss_curve": log.curve, "losses": log.losses, "heldout_before": before,
            })
    progress.close()
    return TrainedSteps(step, steps_per_epoch, units_seen, run_units,
                        time.perf_counter() - run_start, wall_before, resumed_from, before, log)
