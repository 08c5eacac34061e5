"""Pieces shared by pre-training and distillation: learning-rate schedule, parameter groups,
and the output folder with its resume checkpoint (safetensors + JSON, never pickle)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from adrecall import resume_checkpoint
from adrecall.resume_checkpoint import remove_checkpoints


def linear_schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then linear decay to 0."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def warmup_steps(total: int, ratio: float) -> int:
    """Number of warm-up steps for ``ratio`` of ``total`` steps."""
    return math.ceil(total * ratio)


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


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> float:
    """Set every group's lr to ``base_lr × factor``; returns the first group's lr."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return float(optimizer.param_groups[0]["lr"])


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


def prepare_resumable_out(out: str | Path, fingerprint: dict, overwrite: bool) -> Path | None:
    """Get ``out`` ready for a resumable run: returns the checkpoint to resume (same
    fingerprint), or None for a fresh run; refuses to clobber anything else unless
    ``overwrite``."""
    from domain_adapt.model_io import prepare_out_dir

    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {str(out_dir)!r} is a file; give a folder")
    checkpoint = resume_checkpoint.find_checkpoint(out_dir) if out_dir.is_dir() else None
    if overwrite:
        prepare_out_dir(out_dir, overwrite=True)
        return None
    prepare_out_dir(out_dir, overwrite=False, keep=resume_checkpoint.CHECKPOINT_NAMES)
    if checkpoint is None:
        remove_checkpoints(out_dir)  # leftovers of a kill before the first whole checkpoint
        return None
    resume_checkpoint.check_same_run(checkpoint, fingerprint)
    return checkpoint
