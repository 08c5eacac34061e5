"""Resume checkpoints without pickle: model folder + optimizer tensors (safetensors) + JSON.

A checkpoint folder holds the BertSim model folder (``model/``), ``optimizer.safetensors``
(every tensor of the optimizer state, keyed ``state.<param index>.<name>``),
``rng.safetensors`` (torch's CPU generator state) and ``trainer_state.json`` (the optimizer's
param groups and non-tensor state, plus the trainer's position and history). It is written to
a temporary folder and swapped in with renames, so a kill at any moment leaves either the old
or the new checkpoint whole.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    from rerank.model import BertSim

CHECKPOINT_DIR = "checkpoint"
_STATE_FILE = "trainer_state.json"


def optimizer_to_safe(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-able rest."""
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


def optimizer_from_safe(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    """Inverse of :func:`optimizer_to_safe`: load the state into ``optimizer``."""
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
    out_dir: Path, model: BertSim, optimizer: torch.optim.Optimizer, trainer_state: dict
) -> Path:
    """Write ``out_dir/checkpoint`` atomically (temp folder, then renames)."""
    final = out_dir / CHECKPOINT_DIR
    tmp = out_dir / (CHECKPOINT_DIR + ".tmp")
    old = out_dir / (CHECKPOINT_DIR + ".old")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save(tmp / "model")
    tensors, meta = optimizer_to_safe(optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    save_file({"torch_cpu": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    payload = dict(trainer_state)
    payload["optimizer"] = meta
    (tmp / _STATE_FILE).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def find_checkpoint(out_dir: Path) -> Path | None:
    """The newest whole checkpoint in ``out_dir`` (also one left as ``.old`` by a kill)."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"):
        path = out_dir / name
        if (path / _STATE_FILE).is_file():
            return path
    return None


def read_trainer_state(checkpoint: Path) -> dict:
    """The trainer state JSON of a checkpoint folder."""
    return json.loads((checkpoint / _STATE_FILE).read_text(encoding="utf-8"))


def restore_checkpoint(
    checkpoint: Path, model: BertSim, optimizer: torch.optim.Optimizer
) -> dict:
    """Load weights, optimizer state and RNG state; return the trainer state."""
    from rerank.model import BertSim as _BertSim

    saved = _BertSim.load(checkpoint / "model")
    model.encoder.load_state_dict(saved.encoder.state_dict())
    model.head.load_state_dict(saved.head.state_dict())
    state = read_trainer_state(checkpoint)
    optimizer_from_safe(optimizer, load_file(str(checkpoint / "optimizer.safetensors")),
                        state["optimizer"])
    torch.set_rng_state(load_file(str(checkpoint / "rng.safetensors"))["torch_cpu"])
    return state


def remove_checkpoints(out_dir: Path) -> None:
    """Delete every checkpoint folder under ``out_dir`` (after a finished run)."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old", CHECKPOINT_DIR + ".tmp"):
        if (out_dir / name).exists():
            shutil.rmtree(out_dir / name)
