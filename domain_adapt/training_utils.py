"""Pieces shared by pre-training and distillation: learning-rate schedule, parameter groups,
bf16 autocast, the output folder's resume checkpoint (safetensors + JSON, never pickle)."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

CHECKPOINT_DIR = "checkpoint"
_STATE_FILE = "trainer_state.json"


@contextmanager
def autocast(precision: str) -> Iterator[None]:
    """bf16 autocast on CPU (the AMX units) for ``"bf16"``; nothing for ``"fp32"``."""
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


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


def diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the entries where two nested dicts differ."""
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff_keys(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


def _optimizer_to_safe(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, state in state_dict["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in state_dict["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_from_safe(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> Path:
    """Write ``out_dir/checkpoint`` (model weights, optimizer tensors, RNG, JSON state) into a
    temporary folder and swap it in with renames: a kill leaves the old or the new one whole."""
    final = out_dir / CHECKPOINT_DIR
    tmp = out_dir / (CHECKPOINT_DIR + ".tmp")
    old = out_dir / (CHECKPOINT_DIR + ".old")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    tensors, meta = _optimizer_to_safe(optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    save_file({"torch_cpu": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    (tmp / _STATE_FILE).write_text(
        json.dumps({**state, "optimizer": meta}, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def find_checkpoint(out_dir: Path) -> Path | None:
    """The whole checkpoint in ``out_dir`` (also one left as ``.old`` by a kill), or None."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"):
        path = out_dir / name
        if (path / _STATE_FILE).is_file():
            return path
    return None


def read_checkpoint_state(checkpoint: Path) -> dict:
    """The JSON state of a checkpoint folder."""
    return json.loads((checkpoint / _STATE_FILE).read_text(encoding="utf-8"))


def restore_checkpoint(checkpoint: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Load weights, optimizer and RNG state from ``checkpoint``; return its JSON state."""
    load_model(model, str(checkpoint / "model.safetensors"))
    state = read_checkpoint_state(checkpoint)
    _optimizer_from_safe(
        optimizer, load_file(str(checkpoint / "optimizer.safetensors")), state["optimizer"]
    )
    torch.set_rng_state(load_file(str(checkpoint / "rng.safetensors"))["torch_cpu"])
    return state


def remove_checkpoints(out_dir: Path) -> None:
    """Delete every checkpoint folder of ``out_dir`` (after a finished run)."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old", CHECKPOINT_DIR + ".tmp"):
        if (out_dir / name).exists():
            shutil.rmtree(out_dir / name)


def prepare_resumable_out(out: str | Path, fingerprint: dict, overwrite: bool) -> Path | None:
    """Get ``out`` ready for a resumable run: returns the checkpoint to resume (same
    fingerprint), or None for a fresh run; refuses to clobber anything else unless
    ``overwrite``."""
    from domain_adapt.model_io import prepare_out_dir

    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {str(out_dir)!r} is a file; give a folder")
    checkpoint = find_checkpoint(out_dir) if out_dir.is_dir() else None
    if overwrite:
        prepare_out_dir(out_dir, overwrite=True)
        return None
    prepare_out_dir(out_dir, overwrite=False, keep=_checkpoint_names())
    if checkpoint is None:
        remove_checkpoints(out_dir)  # leftovers of a kill before the first whole checkpoint
        return None
    saved = read_checkpoint_state(checkpoint).get("fingerprint") or {}
    if saved != fingerprint:
        raise ValueError(
            f"{checkpoint} is a checkpoint of a different run (differs in "
            f"{diff_keys(saved, fingerprint)}); use the same corpus and settings to resume, "
            "another --out, or --overwrite"
        )
    return checkpoint


def _checkpoint_names() -> tuple[str, ...]:
    return (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old", CHECKPOINT_DIR + ".tmp")
