"""BertSim's encoder rules: choose the pooling, restore saved weights, and check the sequence
length the encoder can read (locating and loading it is :mod:`adrecall.model_loading`).

Pooling rule (``resolve_pooling``): ``"auto"`` picks BERT's pooler only when the checkpoint
holds trained pooler weights (present with a non-zero bias), else the [CLS] hidden state.
``"mean"`` averages the hidden states of the pair's tokens (what a sentence-transformers
bi-encoder was trained to produce).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from rerank.config import POOLINGS


def resolve_pooling(pooling: str, encoder_dir: Path) -> str:
    """``"auto"`` → ``"pooler"`` if the checkpoint has trained pooler weights, else ``"cls"``."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if pooling == "auto":
        return "pooler" if _has_trained_pooler(encoder_dir) else "cls"
    if pooling == "pooler" and not _has_pooler_weights(encoder_dir):
        raise ValueError(
            f"{encoder_dir}: pooling='pooler' asked for, but the checkpoint has no pooler "
            "weights; use pooling='cls' (or 'auto')"
        )
    return pooling


def _pooler_tensors(encoder_dir: Path) -> dict[str, torch.Tensor] | None:
    from safetensors import safe_open

    files = sorted(encoder_dir.glob("*.safetensors"))
    found: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), "pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                if "pooler.dense." in key:
                    found[key.rsplit(".", 1)[-1]] = handle.get_tensor(key)
    return found or None


def _has_pooler_weights(encoder_dir: Path) -> bool:
    return _pooler_tensors(encoder_dir) is not None


def _has_trained_pooler(encoder_dir: Path) -> bool:
    tensors = _pooler_tensors(encoder_dir)
    if not tensors or "bias" not in tensors:
        return False
    return bool(torch.count_nonzero(tensors["bias"]).item() > 0)


def load_state(module: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    expected = set(module.state_dict())
    # Buffers such as position_ids may or may not be saved; they are rebuilt by the config.
    missing = [k for k in expected - set(weights) if not k.endswith("position_ids")]
    if missing:
        raise ValueError(f"{source}: missing encoder weights {sorted(missing)[:5]}")
    usable = {k: v for k, v in weights.items() if k in expected}
    module.load_state_dict(usable, strict=False)


def uses_token_types(encoder: nn.Module) -> bool:
    return int(getattr(encoder.config, "type_vocab_size", 0) or 0) > 1


def position_limit(encoder: nn.Module) -> int:
    """The longest token sequence ``encoder`` can read."""
    limit = int(getattr(encoder.config, "max_position_embeddings", 512) or 512)
    if getattr(encoder.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa positions start after the padding index
    return limit


def check_max_length(max_length: int | None, encoder: nn.Module, tokenizer: Any) -> int:
    """``max_length`` if the encoder can read it; ``None`` stands for the encoder's limit."""
    limit = position_limit(encoder)
    if max_length is None:
        return limit
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 8:
        raise ValueError(f"max_length must be an integer of at least 8, got {max_length!r}")
    if max_length > limit:
        raise ValueError(
            f"max_length {max_length} exceeds what the encoder can read ({limit} positions); "
            f"pass max_length <= {limit}"
        )
    return max_length
