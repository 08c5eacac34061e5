"""``adrecall info MODEL_OR_INDEX``: what a model, BertSim or index folder holds, without
loading any weights (the data comes from :mod:`adrecall.model_info`)."""

from __future__ import annotations

import argparse
from typing import Any

from adrecall.cli_options import add_commands, print_json
from adrecall.model_info import inspect_target


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    add_commands(subparsers, [(
        "info", _options, _run,
        "parameter counts, vocabulary and settings of a model, or the summary of an index",
        ("Describe a model folder ('default' for the embedded MiniLM, a Hugging Face or "
         "sentence-transformers folder, or a BertSim): parameters by part, vocabulary and its CJK "
         "characters, maximum length, pooling, WoBERT flag. For an index folder: its manifest "
         "and the size of each file. Reads JSON files and weight-file headers only."),
    )])


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="MODEL_OR_INDEX",
                        help="model folder, 'default', BertSim folder or index folder")
    parser.add_argument("--json", action="store_true", help="print the same data as JSON")


def _run(args: argparse.Namespace) -> int:
    info = inspect_target(args.target)
    if args.json:
        print_json(args, info)
    elif info["kind"] == "index":
        print(format_index(info))
    else:
        print(format_model(info))
    return 0


def _n(value: int) -> str:
    return f"{value:,}"


def format_model(info: dict[str, Any]) -> str:
    """The readable report of :func:`adrecall.model_info.inspect_model`."""
    name = f" ({info['name']})" if info["name"] else ""
    kind = f", adrecall {info['adrecall_kind']}" if info["adrecall_kind"] else ""
    lines = [f"model {info['path']}{name}"]
    form = info["format"] + (f" ({' > '.join(info['modules'])})" if info["modules"] else "")
    lines.append(
        f"format: {form}{kind}"
        + (" — UNFINISHED (its write stopped)" if info["unfinished"] else "")
    )
    lines.append(
        f"architecture: {info['architecture']} ({info['model_type']})"
        + "".join(
            f", {template.format(info[key])}"
            for key, template in _SHAPE_FIELDS
            if info[key] is not None
        )
    )
    lines.extend(_parameter_lines(info))
    vocab = info["vocabulary"]
    rows = vocab["embedding_rows"]
    lines.append(
        f"vocabulary: {_n(vocab['size'])} tokens ({vocab['source'] or 'no tokenizer file'})"
        + (f", {_n(rows)} embedding rows" if rows is not None and rows != vocab["size"] else "")
        + f"; {_n(vocab['cjk_characters'])} single CJK characters"
    )
    lines.append(
        f"max length: {info['max_length']} tokens ({info['max_length_source']}; "
        f"{info['max_position_embeddings']} position embeddings)"
    )
    lines.append(
        f"pooling: {info['pooling']} ({info['pooling_source']})"
        + ("; embeddings normalised" if info["normalize_embeddings"] else "")
    )
    lines.append(f"WoBERT: {'on' if info['wobert'] else 'off'}")
    return "\n".join(lines)


_SHAPE_FIELDS = (
    ("hidden_size", "hidden {}"),
    ("layers", "{} layers"),
    ("attention_heads", "{} heads"),
    ("intermediate_size", "intermediate {}"),
)


def _parameter_lines(info: dict[str, Any]) -> list[str]:
    disk = info["weights_on_disk"]
    parts = info["parameters"]
    files = ", ".join(disk["files"]) or "no safetensors"
    disk_line = f"weights on disk: {_n(disk['parameters'])} ({files})"
    if parts is None:
        return [f"parameters: {info['parameters_note']}", disk_line]
    emb = parts["embeddings"]
    h = int(info["hidden_size"])
    rows: list[tuple[str, int]] = [
        ("embeddings", emb["total"]),
        (f"  word ({_n(emb['word'] // h)} x {h})", emb["word"]),
        (f"  position ({_n(emb['position'] // h)} x {h})", emb["position"]),
        (f"  token type ({_n(emb['token_type'] // h)} x {h})", emb["token_type"]),
        ("  LayerNorm", emb["layer_norm"]),
    ]
    for i, layer in enumerate(parts["layers"]):
        rows.append((f"layer {i} attention", layer["attention"]))
        rows.append((f"layer {i} feed-forward", layer["feed_forward"]))
    rows.append(("pooler", parts["pooler"]))
    if parts["head"] is not None:
        rows.append(("BertSim head", parts["head"]))
    rows.extend((f"module {name}", count) for name, count in parts.get("modules", {}).items())
    rows.append(("total", parts["total"]))
    width = max(len(label) for label, _ in rows)
    digits = len(_n(parts["total"]))
    lines = ["parameters:"] + [
        f"  {label:<{width}}  {_n(count):>{digits}}" for label, count in rows
    ]
    if disk["parameters"] != parts["total"]:
        disk_line += f" — differs from the config's {_n(parts['total'])}"
    return [*lines, disk_line]


def format_index(info: dict[str, Any]) -> str:
    """The readable report of :func:`adrecall.model_info.inspect_index`."""
    m = info["manifest"]
    lines = [f"index {info['path']}"]
    if info["unfinished"]:
        lines.append("UNFINISHED: the build writing it stopped before its manifest")
    else:
        dim = m.get("dimension")
        if m.get("model_dimension") not in (None, dim):
            dim = f"{dim} (model {m['model_dimension']})"
        sha = str(m.get("model_sha256", ""))[:16]
        lines += [
            f"model: {m.get('model')}" + (f" (weights sha256 {sha}…)" if sha else ""),
            f"ads: {_n(int(m.get('count', 0)))}, dimension {dim}, metric {m.get('metric')}",
            f"index type: {m.get('index_type')} (factory {m.get('factory')!r}"
            + "".join(f", {k} {v}" for k, v in (m.get("search_params") or {}).items())
            + ")",
            f"text normalisation: {'on' if m.get('normalize_text') else 'off'}",
            f"whitening: {_whitening(m.get('whitening'))}",
            f"WoBERT: {'on' if m.get('wobert') else 'off'}",
            f"built: {m.get('built_at')} in {float(m.get('build_seconds', 0)):.1f} s",
            f"format version: {m.get('format_version')}",
        ]
        for source, digest in (m.get("sources") or {}).items():
            lines.append(f"source: {source} (sha256 {str(digest)[:16]}…)")
        lines += [
            f"{key.replace('_', ' ')}: {value}"
            for key, value in m.items()
            if key not in _SHOWN_INDEX_FIELDS
        ]
    width = max([len(name) for name in info["files"]] + [len("total")])
    lines.append("files:")
    lines += [f"  {name:<{width}}  {_size(size):>10}" for name, size in info["files"].items()]
    lines.append(f"  {'total':<{width}}  {_size(info['total_bytes']):>10}")
    return "\n".join(lines)


_SHOWN_INDEX_FIELDS = {
    "model",
    "model_sha256",
    "count",
    "dimension",
    "model_dimension",
    "metric",
    "index_type",
    "factory",
    "search_params",
    "normalize_text",
    "whitening",
    "wobert",
    "built_at",
    "build_seconds",
    "format_version",
    "sources",
    "files",
    "kind",
}
"""Manifest fields :func:`format_index` words itself; any other is printed as it is."""


def _whitening(value: Any) -> str:
    if not value:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _size(size: int) -> str:
    """Bytes below 1 kB, else kB / MB / GB (powers of 1000)."""
    if size < 1000:
        return f"{size} B"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
