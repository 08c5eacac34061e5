"""Loading model directories: one place for every package, so each honours the same rules.

A model directory is a plain Hugging Face one (``config.json`` + weights + tokenizer at its
root) or a sentence-transformers one (``modules.json``; the Transformer module at the root or
in a sub-folder). Weights are read from safetensors only (nothing is ever unpickled), and a
tokenizer whose config carries the WoBERT flag (:mod:`adrecall.wobert`) gets WoBERT
pre-tokenisation wherever it is loaded: retrieval, BertSim, encoder training, domain adaptation.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adrecall.wobert import maybe_enable_wobert


def is_sentence_transformers_dir(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` is a sentence-transformers directory (has ``modules.json``)."""
    return (Path(model_dir) / "modules.json").is_file()


def encoder_dir(model_dir: str | Path) -> Path:
    """The Hugging Face transformer folder inside a model directory (the sentence-transformers
    ``Transformer`` module's folder, or the directory itself)."""
    model_dir = Path(model_dir)
    if is_sentence_transformers_dir(model_dir):
        for module in json.loads((model_dir / "modules.json").read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith("Transformer"):
                candidate = model_dir / module.get("path", "")
                if (candidate / "config.json").is_file():
                    return candidate
    if (model_dir / "config.json").is_file():
        return model_dir
    raise ValueError(
        f"{model_dir}: found no transformer config.json (neither at the root nor in a "
        "sentence-transformers Transformer module); pass a BERT-family model directory"
    )


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars (expected key mismatches)."""
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


def pooler_kwargs(config: Any, with_pooler: bool, *, required: bool = True) -> dict:
    """``add_pooling_layer`` for BERT-like models; others (DistilBERT, ...) have no pooler,
    which is an error when ``required`` (a pooler was asked for) and ignored otherwise."""
    from transformers import MODEL_MAPPING

    try:
        model_cls = MODEL_MAPPING[type(config)]
    except KeyError as exc:
        raise ValueError(f"{type(config).__name__}: not a model family transformers knows") from exc
    init: Any = model_cls.__init__  # type: ignore[misc]
    if "add_pooling_layer" in inspect.signature(init).parameters:
        return {"add_pooling_layer": with_pooler}
    if with_pooler and required:
        raise ValueError(f"{model_cls.__name__} has no pooler; use pooling='cls'")
    return {}


def load_hf_encoder(enc_dir: Path, with_pooler: bool, *, pooler_required: bool = True) -> Any:
    """The bare encoder (``AutoModel``) of ``enc_dir`` from safetensors, in its own memory
    (not the file's memory map), so that a model scores identically before and after saving.
    ``pooler_required=False``: load without a pooler where the architecture has none."""
    import torch
    from transformers import AutoConfig, AutoModel

    if not any(p.name == "model.safetensors" or p.name.startswith("model-")
               for p in enc_dir.glob("*.safetensors")):
        raise ValueError(
            f"{enc_dir}: no model .safetensors weights; adrecall never unpickles .bin files. "
            "Convert the model once with save_pretrained() in a trusted environment"
        )
    config = AutoConfig.from_pretrained(str(enc_dir))
    with quiet_transformers():
        encoder = AutoModel.from_pretrained(
            str(enc_dir), use_safetensors=True,
            **pooler_kwargs(config, with_pooler, required=pooler_required),
        )
    with torch.no_grad():
        for tensor in [*encoder.parameters(), *encoder.buffers()]:
            tensor.data = tensor.data.clone()
    return encoder


def load_tokenizer(model_dir: str | Path) -> Any:
    """``AutoTokenizer`` of a model's encoder folder, with WoBERT on when its flag says so."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir(model_dir)))
    maybe_enable_wobert(tokenizer)
    return tokenizer


def load_sentence_transformer(model_dir: str | Path) -> Any:
    """A CPU ``SentenceTransformer`` of ``model_dir``; a plain Hugging Face directory gets
    mean pooling. WoBERT is switched on when the tokenizer's flag asks for it."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    with quiet_transformers():
        if is_sentence_transformers_dir(model_dir):
            model = SentenceTransformer(str(model_dir), device="cpu")
        else:
            transformer = Transformer(str(model_dir))
            pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
            model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    first = model[0] if len(model) else None
    if first is None or getattr(first, "tokenizer", None) is None:
        raise ValueError(f"{model_dir}: the first module has no tokenizer; not a text encoder")
    maybe_enable_wobert(first)
    return model
