"""What a model or index folder holds, read from its JSON files and weight-file headers only
(no weights are loaded): the data behind ``adrecall info``.

A model folder is a Hugging Face one (``config.json``), a sentence-transformers one
(``modules.json``), a BertSim written by ``adrecall train-reranker`` (manifest kind
``bertsim``) or ``default`` (the embedded all-MiniLM-L6-v2). An index folder is what
``adrecall build`` writes (manifest kind ``index``).

Parameter counts come from the config for BERT-layout encoders (``bert``, ``roberta``,
``xlm-roberta``, ``camembert``)::

    embeddings   word V×H + position P×H + token type T×H + LayerNorm 2H
    attention    query, key, value and output dense 4(H×H + H) + LayerNorm 2H   (per layer)
    feed-forward intermediate H×I + I, output I×H + H, LayerNorm 2H            (per layer)
    pooler       H×H + H, counted when the checkpoint holds pooler weights (a BertSim: when
                 its pooling is "pooler"), which is when adrecall's loaders build one
    BertSim head Linear(H, inner) + Linear(inner, 1), ``inner`` from its manifest (256)

The weights on disk are counted as well, from the safetensors headers (shapes only), so a
config that does not describe its checkpoint shows.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from adrecall.folders import BERTSIM, INDEX, MANIFEST_FILE, read_manifest
from adrecall.model_loading import encoder_dir, is_sentence_transformers_dir
from adrecall.models import DEFAULT_MODEL, default_model_dir
from adrecall.wobert import WOBERT_FLAG, is_cjk_char

BERT_LAYOUT_TYPES = ("bert", "roberta", "xlm-roberta", "camembert")
"""Model types whose parameters :func:`bert_parameter_counts` describes exactly."""
BERTSIM_HEAD_FILE = "head.safetensors"
BERTSIM_HEAD_INNER = 256
_NOT_ENCODER_WEIGHTS = (BERTSIM_HEAD_FILE, "mlm_head.safetensors")
_ST_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_NO_LIMIT = 10**9
"""``model_max_length`` at or above this means the tokenizer sets no limit."""


# ---------------------------------------------------------------------------- counting
def bert_parameter_counts(
    config: Mapping[str, Any], *, pooler: bool, head_inner: int | None = None
) -> dict[str, Any]:
    """Parameters of a BERT-layout encoder by part, from its ``config.json`` alone.

    Returns ``embeddings`` (``word``, ``position``, ``token_type``, ``layer_norm``, ``total``),
    ``layers`` (one ``{"attention", "feed_forward", "total"}`` per layer), ``pooler`` (0 without),
    ``head`` (a BertSim head of ``head_inner`` units, ``None`` without) and ``total``. Equals
    ``sum(p.numel() for p in model.parameters())`` of the ``transformers`` model.
    """
    try:
        h = int(config["hidden_size"])
        n_layers = int(config["num_hidden_layers"])
        inter = int(config["intermediate_size"])
        vocab = int(config["vocab_size"])
        positions = int(config["max_position_embeddings"])
    except KeyError as exc:
        raise ValueError(
            f"the model config lacks {exc.args[0]!r}; cannot count parameters"
        ) from exc
    types = int(config.get("type_vocab_size", 2))
    layer_norm = 2 * h
    embeddings = {
        "word": vocab * h,
        "position": positions * h,
        "token_type": types * h,
        "layer_norm": layer_norm,
    }
    embeddings["total"] = sum(embeddings.values())
    attention = 4 * (h * h + h) + layer_norm
    feed_forward = (h * inter + inter) + (inter * h + h) + layer_norm
    layers = [
        {"attention": attention, "feed_forward": feed_forward, "total": attention + feed_forward}
        for _ in range(n_layers)
    ]
    pooler_count = h * h + h if pooler else 0
    head = None if head_inner is None else (h * head_inner + head_inner) + (head_inner + 1)
    total = embeddings["total"] + sum(layer["total"] for layer in layers) + pooler_count
    return {
        "embeddings": embeddings,
        "layers": layers,
        "pooler": pooler_count,
        "head": head,
        "total": total + (head or 0),
    }


def safetensors_shapes(path: str | Path) -> dict[str, tuple[str, list[int]]]:
    """``{tensor name: (dtype, shape)}`` from a safetensors file's header (no data read)."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its header length)")
        (length,) = struct.unpack("<Q", head)
        if length > 100_000_000:
            raise ValueError(f"{path}: not a safetensors file (header length {length})")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a safetensors file (unreadable header)") from exc
    return {
        k: (str(v["dtype"]), list(v["shape"])) for k, v in header.items() if k != "__metadata__"
    }


def weight_parameters(files: Iterable[Path]) -> tuple[int, list[str]]:
    """Elements of every floating-point tensor in ``files`` (integer buffers such as
    ``position_ids`` are not parameters) and every tensor name."""
    count, names = 0, []
    for file in files:
        for name, (dtype, shape) in safetensors_shapes(file).items():
            names.append(name)
            if dtype.startswith(("F", "BF")):
                count += math.prod(shape)
    return count, names


def count_cjk_characters(tokens: Iterable[str]) -> int:
    """How many tokens are one CJK ideograph, by BERT's Chinese-character ranges
    (:func:`adrecall.wobert.is_cjk_char`): U+4E00–U+9FFF, extension A U+3400–U+4DBF,
    extensions B–E U+20000–U+2CEAF, compatibility U+F900–U+FAFF and U+2F800–U+2FA1F.
    Continuation pieces (``##中``) and multi-character words are not counted."""
    return sum(1 for t in tokens if len(t) == 1 and is_cjk_char(t))


# ---------------------------------------------------------------------------- model folders
def vocabulary(enc_dir: Path) -> tuple[list[str], str]:
    """The tokenizer's tokens (``tokenizer.json``'s model vocabulary and added tokens, else
    ``vocab.txt``) and the file they came from."""
    tok_json = enc_dir / "tokenizer.json"
    if tok_json.is_file():
        data = json.loads(tok_json.read_text(encoding="utf-8"))
        vocab = data.get("model", {}).get("vocab", {})
        tokens = list(vocab) if isinstance(vocab, dict) else [str(entry[0]) for entry in vocab]
        known = set(tokens)
        tokens += [t["content"] for t in data.get("added_tokens", []) if t["content"] not in known]
        return tokens, tok_json.name
    vocab_txt = enc_dir / "vocab.txt"
    if vocab_txt.is_file():
        return vocab_txt.read_text(encoding="utf-8").splitlines(), vocab_txt.name
    return [], ""


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _st_modules(model_dir: Path) -> list[dict]:
    if not is_sentence_transformers_dir(model_dir):
        return []
    return list(json.loads((model_dir / "modules.json").read_text(encoding="utf-8")))


def _st_pooling(model_dir: Path, modules: list[dict]) -> str | None:
    """The pooling mode(s) of a sentence-transformers Pooling module (old or new config)."""
    for module in modules:
        if str(module.get("type", "")).endswith("Pooling"):
            config = _json(model_dir / str(module.get("path", "")) / "config.json")
            mode = config.get("pooling_mode")
            if mode is None:
                mode = [name for flag, name in _ST_POOLING_FLAGS.items() if config.get(flag)]
            return mode if isinstance(mode, str) else "+".join(mode)
    return None


def _max_length(enc_dir: Path, model_dir: Path, positions: int | None) -> tuple[int | None, str]:
    """The token budget adrecall's bi-encoder uses: sentence-transformers' ``max_seq_length``,
    else the tokenizer's ``model_max_length``, at most the position embeddings."""
    st_config = _json(model_dir / "sentence_bert_config.json")
    if st_config.get("max_seq_length"):
        return int(st_config["max_seq_length"]), "sentence_bert_config.json max_seq_length"
    limit = _json(enc_dir / "tokenizer_config.json").get("model_max_length")
    if isinstance(limit, (int, float)) and 0 < limit < _NO_LIMIT:
        if positions is not None and limit > positions:
            return positions, "max_position_embeddings"
        return int(limit), "tokenizer_config.json model_max_length"
    return positions, "max_position_embeddings"


def inspect_model(model: str | Path) -> dict[str, Any]:
    """Everything :mod:`adrecall.info_command` prints about a model folder (or ``default``)."""
    is_default = str(model) == DEFAULT_MODEL
    model_dir = default_model_dir() if is_default else Path(model).expanduser()
    manifest = read_manifest(model_dir) or {}
    bertsim = manifest.get("kind") == BERTSIM
    enc_dir = encoder_dir(model_dir)
    config = _json(enc_dir / "config.json")
    modules = _st_modules(model_dir)
    weight_files = sorted(
        p for p in enc_dir.glob("*.safetensors") if p.name not in _NOT_ENCODER_WEIGHTS
    )
    on_disk, names = weight_parameters(weight_files)
    encoder_meta = manifest.get("encoder", {}) if bertsim else {}
    if bertsim:
        pooler = encoder_meta.get("pooling") == "pooler"
    else:
        pooler = any(".pooler." in "." + name for name in names) if names else True
    head_inner = int(manifest.get("head", {}).get("inner", BERTSIM_HEAD_INNER)) if bertsim else None
    model_type = str(config.get("model_type", ""))
    parameters, note = None, None
    if model_type in BERT_LAYOUT_TYPES and not config.get("add_cross_attention"):
        parameters = bert_parameter_counts(config, pooler=pooler, head_inner=head_inner)
    else:
        note = (
            f"model type {model_type or 'unknown'!r} is not a BERT-layout encoder "
            f"({', '.join(BERT_LAYOUT_TYPES)}); only the weights on disk are counted"
        )
    disk_files = [p.name for p in weight_files]
    if bertsim and (model_dir / BERTSIM_HEAD_FILE).is_file():
        head_on_disk, _ = weight_parameters([model_dir / BERTSIM_HEAD_FILE])
        on_disk += head_on_disk
        disk_files.append(BERTSIM_HEAD_FILE)
    extra_modules = _extra_module_weights(model_dir, enc_dir, modules)
    if parameters is not None and extra_modules:
        parameters["modules"] = extra_modules
        parameters["total"] += sum(extra_modules.values())
    on_disk += sum(extra_modules.values())
    tokens, vocab_source = vocabulary(enc_dir)
    positions = config.get("max_position_embeddings")
    if bertsim:
        max_length, length_source = manifest.get("max_length"), "manifest.json max_length"
        pooling, pooling_source = encoder_meta.get("pooling"), "manifest.json encoder.pooling"
    else:
        max_length, length_source = _max_length(enc_dir, model_dir, positions)
        pooling = _st_pooling(model_dir, modules)
        pooling_source = "sentence-transformers Pooling config"
        if pooling is None:
            pooling, pooling_source = "mean", "adrecall's default for a plain Hugging Face folder"
    return {
        "kind": "bertsim" if bertsim else "model",
        "path": str(model_dir.resolve()),
        "name": DEFAULT_MODEL if is_default else None,
        "format": "bertsim" if bertsim else ("sentence-transformers" if modules else "huggingface"),
        "adrecall_kind": manifest.get("kind"),
        "unfinished": bool(manifest.get("unfinished")),
        "modules": [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules],
        "architecture": (config.get("architectures") or [None])[0],
        "model_type": model_type or None,
        "hidden_size": config.get("hidden_size"),
        "layers": config.get("num_hidden_layers"),
        "attention_heads": config.get("num_attention_heads"),
        "intermediate_size": config.get("intermediate_size"),
        "parameters": parameters,
        "parameters_note": note,
        "weights_on_disk": {"files": disk_files, "parameters": on_disk},
        "vocabulary": {
            "size": len(tokens),
            "embedding_rows": config.get("vocab_size"),
            "cjk_characters": count_cjk_characters(tokens),
            "source": vocab_source,
        },
        "max_length": max_length,
        "max_length_source": length_source,
        "max_position_embeddings": positions,
        "pooling": pooling,
        "pooling_source": pooling_source,
        "normalize_embeddings": any(str(m.get("type", "")).endswith("Normalize") for m in modules),
        "wobert": bool(_json(enc_dir / "tokenizer_config.json").get(WOBERT_FLAG, False)),
    }


def _extra_module_weights(model_dir: Path, enc_dir: Path, modules: list[dict]) -> dict[str, int]:
    """Parameters of sentence-transformers modules other than the Transformer (a Dense layer,
    say), from their safetensors headers."""
    extra: dict[str, int] = {}
    for module in modules:
        folder = model_dir / str(module.get("path", ""))
        if folder.is_dir() and folder.resolve() != enc_dir.resolve():
            count, _ = weight_parameters(sorted(folder.glob("*.safetensors")))
            if count:
                extra[str(module.get("path"))] = count
    return extra


# ---------------------------------------------------------------------------- index folders
def inspect_index(path: str | Path) -> dict[str, Any]:
    """An index folder's manifest and the size of each of its files."""
    path = Path(path).expanduser()
    manifest = read_manifest(path) or {}
    sizes = {p.name: p.stat().st_size for p in sorted(path.iterdir()) if p.is_file()}
    return {
        "kind": INDEX,
        "path": str(path.resolve()),
        "unfinished": bool(manifest.get("unfinished")),
        "manifest": manifest,
        "files": sizes,
        "total_bytes": sum(sizes.values()),
    }


# ---------------------------------------------------------------------------- either
def inspect_target(target: str | Path) -> dict[str, Any]:
    """:func:`inspect_index` or :func:`inspect_model`, by what ``target`` holds; a path that is
    neither raises (``FileNotFoundError`` / ``ValueError``) with one line naming it."""
    if str(target) == DEFAULT_MODEL:
        return inspect_model(DEFAULT_MODEL)
    path = Path(target).expanduser()
    expected = (
        f"a model folder (config.json or modules.json; or {DEFAULT_MODEL!r} for the "
        "embedded model), a BertSim folder or an index folder written by `adrecall build`"
    )
    if not path.exists():
        raise FileNotFoundError(f"{str(target)!r} does not exist; expected {expected}")
    if not path.is_dir():
        raise ValueError(f"{str(target)!r} is a file; expected {expected}")
    manifest = read_manifest(path)
    if manifest is not None and manifest["kind"] == INDEX:
        return inspect_index(path)
    if (
        manifest is not None
        and manifest["kind"] == BERTSIM
        and not (path / "config.json").is_file()
    ):
        raise ValueError(
            f"{str(target)!r}: an unfinished or damaged BertSim (no config.json); "
            "train it again with `adrecall train-reranker`"
        )
    if (path / "config.json").is_file() or (path / "modules.json").is_file():
        return inspect_model(path)
    listed = sorted(p.name for p in path.iterdir())[:5]
    holds = f"it holds {', '.join(listed)}" if listed else "it is empty"
    raise ValueError(
        f"{str(target)!r} is neither a model nor an index folder ({holds} and no "
        f"config.json, modules.json or index {MANIFEST_FILE}); expected {expected}"
    )
