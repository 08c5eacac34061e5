"""Resume checkpoints of training runs, without pickle: model + optimizer tensors
(safetensors) + JSON, shared by BertSim training, pre-training and distillation.

A checkpoint folder ``<out>/checkpoint`` holds what the caller's ``write_model`` writes,
``optimizer.safetensors`` (every tensor of the optimizer state, keyed
``state.<param index>.<name>``), ``rng.safetensors`` (torch's CPU generator state) and
``trainer_state.json`` (the optimizer's param groups and non-tensor state, plus the trainer's
position, history and run fingerprint). It is written to a temporary folder and swapped in
with renames, so a kill at any moment leaves either the old or the new checkpoint whole.
:func:`prepare_resumable_out` is the output-folder guard of every resumable run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from adrecall.folders import check_out, prepare_out

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_NAMES = (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old", CHECKPOINT_DIR + ".tmp")
"""Every folder name a checkpoint may have in ``<out>`` (whole, left by a kill, being written)."""
_STATE_FILE = "trainer_state.json"


def optimizer_to_safe(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (for safetensors) and a JSON-able rest."""
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
    out_dir: Path,
    write_model: Callable[[Path], object],
    optimizer: torch.optim.Optimizer,
    state: dict,
) -> Path:
    """Write ``out_dir/checkpoint`` atomically: ``write_model(folder)`` saves the weights into
    the new folder, then the optimizer, RNG and JSON ``state`` follow; returns the folder."""
    final, old, tmp = (out_dir / name for name in CHECKPOINT_NAMES)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write_model(tmp)
    tensors, meta = optimizer_to_safe(optimizer)
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
    for name in CHECKPOINT_NAMES[:2]:
        path = out_dir / name
        if (path / _STATE_FILE).is_file():
            return path
    return None


def read_checkpoint_state(checkpoint: Path) -> dict:
    """The JSON state of a checkpoint folder."""
    return json.loads((checkpoint / _STATE_FILE).read_text(encoding="utf-8"))


def restore_training_state(checkpoint: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Load the optimizer and RNG state of ``checkpoint`` (the caller restores the model's
    weights); returns its JSON state."""
    state = read_checkpoint_state(checkpoint)
    optimizer_from_safe(
        optimizer, load_file(str(checkpoint / "optimizer.safetensors")), state["optimizer"]
    )
    torch.set_rng_state(load_file(str(checkpoint / "rng.safetensors"))["torch_cpu"])
    return state


def remove_checkpoints(out_dir: Path) -> None:
    """Delete every checkpoint folder of ``out_dir`` (after a finished run)."""
    for name in CHECKPOINT_NAMES:
        if (out_dir / name).exists():
            shutil.rmtree(out_dir / name)


def prepare_resumable_out(
    out: str | Path,
    kind: str,
    fingerprint: dict,
    *,
    overwrite: bool,
    inputs: Iterable[str | Path] = (),
) -> Path | None:
    """Get ``out`` ready for a resumable run that writes a ``kind`` folder; returns the
    checkpoint to resume, or None for a fresh run.

    Everything :func:`adrecall.folders.check_out` refuses is refused before any work. A whole
    checkpoint of the same run (same ``fingerprint``) is resumed, together with whatever that
    run already wrote beside it; one of another run is refused. ``overwrite`` starts afresh,
    replacing a folder of ``kind`` and its checkpoints.
    """
    out = Path(out)
    checkpoint = find_checkpoint(out) if out.is_dir() and not overwrite else None
    if checkpoint is None:
        prepare_out(out, kind, overwrite=overwrite, keep=CHECKPOINT_NAMES, inputs=inputs)
        remove_checkpoints(out)  # leftovers of a kill before the first whole checkpoint
        return None
    check_out(out, kind, overwrite=True, keep=CHECKPOINT_NAMES, inputs=inputs)
    check_same_run(checkpoint, fingerprint)
    return checkpoint


def check_same_run(checkpoint: Path, fingerprint: dict) -> None:
    """Refuse to resume ``checkpoint`` unless it was written by a run with ``fingerprint``
    (same data and settings); the error names the settings that differ."""
    saved = read_checkpoint_state(checkpoint).get("fingerprint") or {}
    if saved != fingerprint:
        raise ValueError(
            f"{checkpoint} is a checkpoint of a different run (differs in "
            f"{diff_keys(saved, fingerprint)}); use the same data and settings to resume, "
            "another --out, or --overwrite"
        )


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
