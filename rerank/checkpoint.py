"""BertSim's resume checkpoints: the model folder (``model/``) inside the shared checkpoint
layout of :mod:`adrecall.resume_checkpoint` (safetensors + JSON; nothing is unpickled)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from adrecall import resume_checkpoint

if TYPE_CHECKING:
    from rerank.model import BertSim


def save_checkpoint(
    out_dir: Path, model: BertSim, optimizer: torch.optim.Optimizer, trainer_state: dict
) -> Path:
    """Write ``out_dir/checkpoint`` atomically, the model as a BertSim folder."""
    return resume_checkpoint.save_checkpoint(
        out_dir, lambda folder: model.save(folder / "model"), optimizer, trainer_state
    )


def restore_checkpoint(checkpoint: Path, model: BertSim, optimizer: torch.optim.Optimizer) -> dict:
    """Load weights, optimizer state and RNG state; return the trainer state."""
    from rerank.model import BertSim as _BertSim

    saved = _BertSim.load(checkpoint / "model", backend="torch")
    model.encoder.load_state_dict(saved.encoder.state_dict())
    model.head.load_state_dict(saved.head.state_dict())
    return resume_checkpoint.restore_training_state(checkpoint, optimizer)
