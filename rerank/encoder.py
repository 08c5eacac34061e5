"""Loading a BERT-family encoder for BertSim: locate it, choose the pooling, load weights
from safetensors only (never a pickled ``.bin``), and check the sequence length it can read.

Pooling rule (``resolve_pooling``): ``"auto"`` picks BERT's pooler only when the checkpoint
holds trained pooler weights (present with a non-zero bias), else the [CLS] hidden state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rerank.config import POOLINGS


def find_encoder_dir(model_dir: Path) -> Path:
    """The Hugging Face transformer inside a model folder (itself, or a sentence-transformers
    ``Transformer`` module folder named in ``modules.json``)."""
    if (model_dir / "config.json").is_file():
        return model_dir
    modules_path = model_dir / "modules.json"
    if modules_path.is_file():
        for module in json.loads(modules_path.read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith("Transformer"):
                candidate = model_dir / module.get("path", "")
                if (candidate / "config.json").is_file():
                    return candidate
    raise ValueError(
        f"{model_dir}: found no transformer config.json (neither at the root nor in a "
        "sentence-transformers Transformer module); pass a BERT-family model directory"
    )


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


def pooler_kwargs(config: Any, with_pooler: bool) -> dict:
    """``add_pooling_layer`` for BERT-like models; others (DistilBERT, ...) have no pooler."""
    import inspect

    from transformers import MODEL_MAPPING

    try:
        model_cls = MODEL_MAPPING[type(config)]
    except KeyError as exc:
        raise ValueError(f"{type(config).__name__}: not a model family transformers knows") from exc
    if "add_pooling_layer" in inspect.signature(model_cls.__init__).parameters:
        return {"add_pooling_layer": with_pooler}
    if with_pooler:
        raise ValueError(f"{model_cls.__name__} has no pooler; use pooling='cls'")
    return {}


def load_encoder(encoder_dir: Path, with_pooler: bool) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    if not any(encoder_dir.glob("*.safetensors")):
        raise ValueError(
            f"{encoder_dir}: no .safetensors weights; adrecall never unpickles .bin files. "
            "Convert the model once with save_pretrained() in a trusted environment"
        )
    config = AutoConfig.from_pretrained(str(encoder_dir))
    with quiet_transformers():
        encoder = AutoModel.from_pretrained(
            str(encoder_dir), use_safetensors=True, **pooler_kwargs(config, with_pooler)
        )
    # Own freshly allocated memory (not the file's memory map): the same as a model built by
    # load(), so a model scores bit-identically before saving and after loading.
    with torch.no_grad():
        for tensor in [*encoder.parameters(), *encoder.buffers()]:
            tensor.data = tensor.data.clone()
    return encoder


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


def check_max_length(max_length: int, encoder: nn.Module, tokenizer: Any) -> int:
    limit = int(getattr(encoder.config, "max_position_embeddings", max_length) or max_length)
    if getattr(encoder.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # RoBERTa positions start after the padding index
    if not isinstance(max_length, int) or max_length < 8:
        raise ValueError(f"max_length must be an integer of at least 8, got {max_length!r}")
    if max_length > limit:
        raise ValueError(
            f"max_length {max_length} exceeds what the encoder can read ({limit} positions); "
            f"pass max_length <= {limit}"
        )
    return max_length


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar for expected key mismatches."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
