"""Reading and writing model directories for the domain-adaptation steps.

A model directory is either a plain Hugging Face one (``config.json`` + weights + tokenizer at
its root) or a sentence-transformers one (``modules.json``; the Transformer module at the root
or in a sub-folder). A step reads the encoder from it and writes a directory of the same shape:
every other file (pooling, normalisation, sentence-transformers configs) is copied unchanged,
the encoder's weights and tokenizer are written anew, and ``domain_adapt.json`` records the
steps applied so far. Weights are read from safetensors only; nothing is ever unpickled.

Every step's output is one kind of folder, an adrecall ``adapted-model``: extend-vocab,
pretrain and distill write the same shape, each reads the others' output, and each may replace
the others' output (with ``--overwrite``). A step marks the folder unfinished before its first
file (:func:`begin_output`) and writes the manifest with every file's checksum after its last
(:func:`finish_output`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from adrecall.adaptation_history import HISTORY_FILE, write_history
from adrecall.folders import (
    ADAPTED_MODEL,
    MANIFEST_FILE,
    mark_unfinished,
    prepare_out,
    write_manifest,
)
from adrecall.model_loading import (
    check_model_folder,
    encoder_dir,
    load_hf_encoder,
    quiet_transformers,
)
from adrecall.resume_checkpoint import CHECKPOINT_NAMES

MLM_HEAD_FILE = "mlm_head.safetensors"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "added_tokens.json",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".h5", ".msgpack", ".onnx", ".ckpt")
_SKIPPED_NAMES = {
    "README.md", ".gitattributes", HISTORY_FILE, "onnx", "openvino", *CHECKPOINT_NAMES,
    MANIFEST_FILE, MANIFEST_FILE + ".tmp",  # the output gets a manifest of its own files
}


def checkpoint_keys(enc_dir: Path) -> set[str]:
    """Names of every tensor in the safetensors weights of ``enc_dir``."""
    from safetensors import safe_open

    check_model_folder(enc_dir)
    keys: set[str] = set()
    for file in sorted(p for p in enc_dir.glob("*.safetensors") if p.name != MLM_HEAD_FILE):
        with safe_open(str(file), "pt") as handle:
            keys.update(handle.keys())
    return keys


def load_base_model(enc_dir: Path) -> Any:
    """The bare encoder (``AutoModel``) of ``enc_dir``, with a pooler only if the checkpoint
    holds pooler weights, so that saving it back adds no untrained tensors."""
    with_pooler = any(".pooler." in "." + k for k in checkpoint_keys(enc_dir))
    return load_hf_encoder(enc_dir, with_pooler, pooler_required=False)


def begin_output(out: Path, source: Path, *, overwrite: bool) -> Path:
    """Empty ``out`` (resume checkpoints kept; see :func:`adrecall.folders.prepare_out`) and mark
    it unfinished, just before a step writes its model: a kill from here on leaves a folder that
    loaders refuse and that a step may replace."""
    out = prepare_out(out, ADAPTED_MODEL, overwrite=overwrite, keep=CHECKPOINT_NAMES,
                      inputs=(source,))
    mark_unfinished(out, ADAPTED_MODEL)
    return out


def finish_output(out: Path, source: Path, step: dict) -> None:
    """End a step's write: ``domain_adapt.json`` (the source's steps plus ``step``), then the
    manifest with the checksum of every file (resume checkpoints left out)."""
    write_history(out, source, step)
    write_manifest(out, ADAPTED_MODEL, {"step": step["step"], "source": str(source)},
                   skip=CHECKPOINT_NAMES)


def copy_model_tree(src_model_dir: Path, out: Path) -> Path:
    """Copy everything of ``src_model_dir`` into ``out`` except the encoder's weights and
    tokenizer files (written anew by the caller), exported back-ends, the model card, and the
    source's manifest, history and checkpoints (the output's own are written for it).

    Returns the encoder folder inside ``out`` (same relative place as in the source).
    """
    src_enc = encoder_dir(src_model_dir)
    rel = src_enc.relative_to(src_model_dir)
    for entry in sorted(src_model_dir.iterdir()):
        if entry.name in _SKIPPED_NAMES:
            continue
        if entry.is_dir():
            if entry == src_enc:
                continue
            shutil.copytree(entry, out / entry.name)
        elif not _is_encoder_file(entry, src_enc):
            shutil.copy2(entry, out / entry.name)
    out_enc = out / rel
    out_enc.mkdir(parents=True, exist_ok=True)
    if src_enc != src_model_dir:  # the encoder sits in a module folder: copy its other files
        for entry in sorted(src_enc.iterdir()):
            if entry.is_file() and entry.name not in _SKIPPED_NAMES and not _is_encoder_file(
                entry, src_enc
            ):
                shutil.copy2(entry, out_enc / entry.name)
    return out_enc


def _is_encoder_file(path: Path, enc_dir: Path) -> bool:
    if path.parent != enc_dir:
        return False
    return (
        path.suffix in _WEIGHT_SUFFIXES
        or path.name in TOKENIZER_FILES
        or path.name == "config.json"
        or path.name.endswith(".safetensors.index.json")
    )


def save_encoder(model: Any, tokenizer: Any, enc_dir: Path) -> None:
    """Write the encoder's config + ``model.safetensors`` and the tokenizer (with a
    ``vocab.txt`` in id order for WordPiece tokenizers) into ``enc_dir``."""
    import transformers

    enc_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {} if int(transformers.__version__.split(".")[0]) >= 5 else {"safe_serialization": True}
    with quiet_transformers():
        model.save_pretrained(str(enc_dir), **kwargs)
    tokenizer.save_pretrained(str(enc_dir))  # WoBERT-safe: see adrecall.wobert
    vocab = tokenizer.get_vocab()
    if _is_wordpiece(tokenizer):
        by_id = sorted(vocab.items(), key=lambda item: item[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise ValueError(f"{enc_dir}: the tokenizer's ids are not 0..{len(by_id) - 1}")
        (enc_dir / "vocab.txt").write_text(
            "".join(token + "\n" for token, _ in by_id), encoding="utf-8"
        )


def _is_wordpiece(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.model).__name__ == "WordPiece"
