"""What an output folder holds, and the one guard every command passes before writing one.

Every folder adrecall writes (an index, a BertSim, a fine-tuned encoder, an adapted model)
carries ``manifest.json`` at its root with a ``kind`` and the SHA-256 of each file it holds.
That is how a command knows a folder is of its own kind before it replaces it, and how a loader
knows the files are the ones that were written. A command may replace only a folder of its own
kind; anything else (another kind, files adrecall did not write) is refused, whatever
``overwrite`` says.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from adrecall.checksums import file_sha256

MANIFEST_FILE = "manifest.json"

INDEX = "index"
BERTSIM = "bertsim"
ENCODER = "encoder"
ADAPTED_MODEL = "adapted-model"
KINDS = (INDEX, BERTSIM, ENCODER, ADAPTED_MODEL)
"""The kinds of folder adrecall writes, as recorded in a manifest's ``kind``."""

_LEGACY_BERTSIM_FORMAT = "adrecall-bertsim"


class FolderError(ValueError):
    """An output folder cannot be written, or a folder's files fail their manifest."""


def folder_kind(path: str | Path) -> str | None:
    """The kind recorded in ``path/manifest.json``, or ``None`` when there is no adrecall manifest.

    Manifests written before ``kind`` existed are recognised by their fields (an index has a
    FAISS ``factory``; a BertSim has ``format: adrecall-bertsim``).
    """
    manifest = Path(path) / MANIFEST_FILE
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("kind")
    if kind in KINDS:
        return str(kind)
    if "factory" in data and "format_version" in data:
        return INDEX
    if data.get("format") == _LEGACY_BERTSIM_FORMAT:
        return BERTSIM
    return None


def describe_contents(path: str | Path) -> str:
    """A short phrase naming what ``path`` holds, for error messages."""
    path = Path(path)
    kind = folder_kind(path)
    if kind is not None:
        return f"an adrecall {kind}"
    entries = sorted(os.listdir(path))
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return f"files adrecall did not write ({shown})"


def check_out(out: str | Path, kind: str, *, overwrite: bool, keep: tuple[str, ...] = ()) -> Path:
    """Refuse an ``out`` that this command may not write, before any work starts.

    ``out`` must be absent, empty (entries named in ``keep``, such as a resume checkpoint, do
    not count), or a folder of ``kind`` (replaced only with ``overwrite``); its nearest existing
    ancestor must be a writable folder. Nothing is created or removed here.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; expected one of {KINDS}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FolderError(f"--out {str(out)!r} is a file; give a folder")
    _check_writable(out)
    if not out.is_dir():
        return out
    entries = [e for e in os.listdir(out) if e not in keep]
    if not entries:
        return out
    found = folder_kind(out)
    if found != kind:
        raise FolderError(
            f"--out {str(out)!r} holds {describe_contents(out)}; this command writes an adrecall "
            f"{kind} and replaces only a folder of that kind: choose a new or empty folder"
        )
    if not overwrite:
        raise FolderError(
            f"--out {str(out)!r} already holds an adrecall {kind}; pass --overwrite "
            "(overwrite=True) to replace it, or choose another folder"
        )
    return out


def prepare_out(out: str | Path, kind: str, *, overwrite: bool, keep: tuple[str, ...] = ()) -> Path:
    """:func:`check_out`, then empty ``out`` (but for ``keep``) and create it: ready to receive."""
    out = check_out(out, kind, overwrite=overwrite, keep=keep)
    if out.is_dir():
        for entry in os.listdir(out):
            if entry in keep:
                continue
            path = out / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def record_files(directory: str | Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` by relative POSIX path (the manifest and
    ``skip`` entries at the root left out), for a manifest's ``files``."""
    directory = Path(directory)
    ignored = {MANIFEST_FILE, *skip}
    return {
        p.relative_to(directory).as_posix(): file_sha256(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).parts[0] not in ignored
    }


def verify_files(directory: str | Path, files: dict[str, str], remedy: str) -> None:
    """Refuse a folder whose recorded files are missing or fail their checksums.

    ``remedy`` ends the message (for example "retrain it" or "rebuild the index").
    """
    directory = Path(directory)
    if not files:
        raise FolderError(f"{directory}: its manifest records no file checksums; {remedy}")
    for name, expected in files.items():
        file = directory / name
        if not file.is_file():
            raise FolderError(f"{directory}: {name} is missing; {remedy}")
        if file_sha256(file) != expected:
            raise FolderError(
                f"{directory}: {name} fails its checksum (corrupted or changed since it was "
                f"written); {remedy}"
            )


def _check_writable(out: Path) -> None:
    ancestor = out
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise FolderError(f"--out {str(out)!r}: {str(ancestor)!r} is a file, not a folder")
    try:  # a real probe: permissions, read-only mounts and quotas all show here (root too)
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise FolderError(
            f"--out {str(out)!r}: cannot write in {str(ancestor)!r} ({exc.strerror}); choose a "
            "folder you can write to"
        ) from exc
