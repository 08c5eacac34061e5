"""Loading model directories: one place for every package, so each honours the same rules.

A model directory is a plain Hugging Face one (``config.json`` + weights + tokenizer at its
root) or a sentence-transformers one (``modules.json``; the Transformer module at the root or
in a sub-folder). Every loader first passes :func:`check_model_folder`: a folder adrecall wrote
(with its manifest) must match its recorded checksums, and weights are read from safetensors
only (a folder holding only pickled weights is refused; nothing is ever unpickled). A tokenizer
whose config carries the WoBERT flag (:mod:`adrecall.wobert`) gets WoBERT pre-tokenisation
wherever it is loaded: retrieval, BertSim, encoder training, domain adaptation
(:func:`set_wobert_flag` switches that flag in a saved model). Every load is
local only (``local_files_only=True``): a model is a directory, and a path that does not exist
is an error, never a download from the Hugging Face Hub.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adrecall.folders import folder_kind, record_change, verify_folder
from adrecall.wobert import WOBERT_FLAG, maybe_enable_wobert

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
"""Weight formats that are Python pickles: loading one can run arbitrary code."""


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


def set_wobert_flag(model_dir: str | Path, on: bool) -> Path:
    """Switch the WoBERT flag of a saved model's tokenizer config; returns the file changed
    (recorded anew in the folder's adrecall manifest, if it has one)."""
    path = encoder_dir(model_dir) / "tokenizer_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the model has no tokenizer config")
    config = json.loads(path.read_text(encoding="utf-8"))
    if on:
        config[WOBERT_FLAG] = True
    else:
        config.pop(WOBERT_FLAG, None)
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    record_change(model_dir, path)
    return path


def check_model_folder(path: str | Path) -> None:
    """Refuse a model folder adrecall must not load, before anything is read from it.

    A folder adrecall wrote (``manifest.json`` with a ``kind``; for a sentence-transformers
    module folder, its parent's) must hold every recorded file unchanged. The transformer's
    folder must hold safetensors weights, and no module folder may hold weights in pickle formats
    only. A user's own model without an adrecall manifest passes the checksum part untouched.
    """
    path = Path(path)
    if folder_kind(path) is not None:
        verify_folder(path)
    elif is_sentence_transformers_dir(path.parent) and folder_kind(path.parent) is not None:
        verify_folder(path.parent)
    enc_dir = encoder_dir(path)
    _require_safetensors(enc_dir, must_have=True)
    if is_sentence_transformers_dir(path):
        for module in json.loads((path / "modules.json").read_text(encoding="utf-8")):
            folder = path / str(module.get("path", ""))
            if folder.is_dir() and folder != enc_dir:
                _require_safetensors(folder, must_have=False)


def _require_safetensors(folder: Path, *, must_have: bool) -> None:
    """Refuse ``folder`` if its weights are pickles only (or, ``must_have``, if it has no
    safetensors model weights at all)."""
    safe = [p for p in folder.glob("*.safetensors")
            if p.name == "model.safetensors" or p.name.startswith("model-")]
    if safe:
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise ValueError(
            f"{folder}: its weights are only in pickle format ({', '.join(pickled)}), which can "
            "run code when loaded, so adrecall never reads them. Convert them once, in an "
            "environment you trust: AutoModel.from_pretrained(dir).save_pretrained(dir, "
            "safe_serialization=True) (for a sentence-transformers folder: "
            "SentenceTransformer(dir).save(dir, safe_serialization=True))"
        )
    if must_have:
        raise ValueError(
            f"{folder}: no model.safetensors weights; pass a model folder saved with "
            "save_pretrained() (safetensors)"
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

    check_model_folder(enc_dir)
    config = AutoConfig.from_pretrained(str(enc_dir), local_files_only=True)
    with quiet_transformers():
        encoder = AutoModel.from_pretrained(
            str(enc_dir), use_safetensors=True, local_files_only=True,
            **pooler_kwargs(config, with_pooler, required=pooler_required),
        )
    with torch.no_grad():
        for tensor in [*encoder.parameters(), *encoder.buffers()]:
            tensor.data = tensor.data.clone()
    return encoder


def load_tokenizer(model_dir: str | Path) -> Any:
    """``AutoTokenizer`` of a model's encoder folder, with WoBERT on when its flag says so."""
    from transformers import AutoTokenizer

    check_model_folder(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir(model_dir)), local_files_only=True)
    maybe_enable_wobert(tokenizer)
    return tokenizer


def load_sentence_transformer(model_dir: str | Path) -> Any:
    """A CPU ``SentenceTransformer`` of ``model_dir``; a plain Hugging Face directory gets
    mean pooling. WoBERT is switched on when the tokenizer's flag asks for it."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    check_model_folder(model_dir)
    safe_only = {"use_safetensors": True}  # never transformers' pickle fallback
    local = {"local_files_only": True}
    with quiet_transformers():
        if is_sentence_transformers_dir(model_dir):
            model = SentenceTransformer(
                str(model_dir), device="cpu", local_files_only=True, model_kwargs=safe_only
            )
        else:
            transformer = Transformer(
                str(model_dir), model_kwargs={**safe_only, **local}, processor_kwargs=local,
                config_kwargs=local,
            )
            pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
            model = SentenceTransformer(
                modules=[transformer, pooling], device="cpu", local_files_only=True
            )
    first = model[0] if len(model) else None
    if first is None or getattr(first, "tokenizer", None) is None:
        raise ValueError(f"{model_dir}: the first module has no tokenizer; not a text encoder")
    maybe_enable_wobert(first)
    return model
