"""What an output folder holds, and the one guard every command passes before writing one.

Every folder adrecall writes (an index, a BertSim, a fine-tuned encoder, an adapted model)
carries ``manifest.json`` at its root with a ``kind`` and the SHA-256 of each file it holds.
That is how a command knows a folder is of its own kind before it replaces it, and how a loader
knows the files are the ones that were written. A command may replace only a folder of its own
kind; anything else (another kind, files adrecall did not write) is refused, whatever
``overwrite`` says.

A writer calls :func:`mark_unfinished` before its first file and :func:`write_manifest` after
its last, so a folder whose write was cut short is recognised (its own command may replace it)
but never loaded. Loaders call :func:`verify_folder`, which hashes each file through
:func:`file_digest`: digests are cached per process, keyed by the file's path, size, mtime,
ctime and inode, so a folder hashed once costs only a ``stat`` per file on later loads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from adrecall.checksums import file_sha256

MANIFEST_FILE = "manifest.json"
_MANIFEST_TMP = MANIFEST_FILE + ".tmp"

INDEX = "index"
BERTSIM = "bertsim"
ENCODER = "encoder"
ADAPTED_MODEL = "adapted-model"
KINDS = (INDEX, BERTSIM, ENCODER, ADAPTED_MODEL)
"""The kinds of folder adrecall writes, as recorded in a manifest's ``kind``."""

_LEGACY_BERTSIM_FORMAT = "adrecall-bertsim"
_REMEDIES = {
    INDEX: "rebuild the index with `adrecall build`",
    BERTSIM: "train it again with `adrecall train-reranker`",
    ENCODER: "train it again with `adrecall train-encoder`",
    ADAPTED_MODEL: "run the step that wrote it again (`adrecall extend-vocab`, `pretrain` or "
    "`distill`)",
}


class FolderError(ValueError):
    """An output folder cannot be written, or a folder's files fail their manifest."""


def read_manifest(path: str | Path) -> dict | None:
    """The adrecall manifest of folder ``path`` with its ``kind`` filled in, or ``None`` when
    there is none (no ``manifest.json``, or one adrecall did not write).

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
    if kind not in KINDS:
        if "factory" in data and "format_version" in data:
            kind = INDEX
        elif data.get("format") == _LEGACY_BERTSIM_FORMAT:
            kind = BERTSIM
        else:
            return None
    return {**data, "kind": str(kind)}


def folder_kind(path: str | Path) -> str | None:
    """The kind recorded in ``path/manifest.json``, or ``None`` when there is no adrecall manifest."""
    manifest = read_manifest(path)
    return None if manifest is None else manifest["kind"]


def describe_contents(path: str | Path) -> str:
    """A short phrase naming what ``path`` holds, for error messages."""
    path = Path(path)
    kind = folder_kind(path)
    if kind is not None:
        return f"an adrecall {kind}"
    return f"files adrecall did not write ({_shown(sorted(os.listdir(path)))})"


def check_out(
    out: str | Path,
    kind: str,
    *,
    overwrite: bool,
    keep: tuple[str, ...] = (),
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Refuse an ``out`` that this command may not write, before any work starts.

    ``out`` must be absent, empty (entries named in ``keep``, such as a resume checkpoint, do
    not count), or a folder of ``kind`` holding nothing but what its manifest records (replaced
    only with ``overwrite``); its nearest existing ancestor must be a writable folder. ``out``
    may neither be, hold nor sit inside one of ``inputs`` (the folders the command reads, such
    as its ``--model``). Nothing is created or removed here.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; expected one of {KINDS}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FolderError(f"--out {str(out)!r} is a file; give a folder")
    _check_apart(out, inputs)
    _check_writable(out)
    if not out.is_dir():
        return out
    entries = [e for e in os.listdir(out) if e not in keep]
    if not entries:
        return out
    manifest = read_manifest(out)
    found = None if manifest is None else manifest["kind"]
    if found != kind:
        raise FolderError(
            f"--out {str(out)!r} holds {describe_contents(out)}; this command writes an adrecall "
            f"{kind} and replaces only a folder of that kind: choose a new or empty folder"
        )
    foreign = _unrecorded(entries, manifest)
    if foreign:
        raise FolderError(
            f"--out {str(out)!r} holds an adrecall {kind} and also files adrecall did not write "
            f"({_shown(foreign)}); move them away or choose a new or empty folder"
        )
    if not overwrite:
        raise FolderError(
            f"--out {str(out)!r} already holds an adrecall {kind}; pass --overwrite "
            "(overwrite=True) to replace it, or choose another folder"
        )
    return out


def prepare_out(out: str | Path, kind: str, *, keep: tuple[str, ...] = (), **checks: Any) -> Path:
    """:func:`check_out` (``checks``: its ``overwrite`` and ``inputs``), then empty ``out`` (but
    for ``keep``) and create it: ready to receive."""
    out = check_out(out, kind, keep=keep, **checks)
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
    ignored = {MANIFEST_FILE, _MANIFEST_TMP, *skip}
    return {
        p.relative_to(directory).as_posix(): file_sha256(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).parts[0] not in ignored
    }


def verify_files(
    directory: str | Path,
    files: dict[str, str],
    remedy: str,
    *,
    digest: Callable[[Path], str] = file_sha256,
) -> None:
    """Refuse a folder whose recorded files are missing or fail their checksums.

    ``remedy`` ends the message (for example "retrain it" or "rebuild the index"); ``digest``
    hashes one file (:func:`file_digest` to reuse digests already taken in this process).
    """
    directory = Path(directory)
    if not files:
        raise FolderError(f"{directory}: its manifest records no file checksums; {remedy}")
    for name, expected in files.items():
        file = directory / name
        if not file.is_file():
            raise FolderError(f"{directory}: {name} is missing; {remedy}")
        if digest(file) != expected:
            raise FolderError(
                f"{directory}: {name} fails its checksum (corrupted or changed since it was "
                f"written); {remedy}"
            )


def mark_unfinished(directory: str | Path, kind: str) -> None:
    """Say in ``directory``'s manifest that a ``kind`` is being written into it, before the
    first file: until :func:`write_manifest` ends the write, loaders refuse the folder, and the
    command of that kind may still replace it."""
    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; expected one of {KINDS}")
    _write_json(Path(directory) / MANIFEST_FILE, {"kind": kind, "unfinished": True})


def write_manifest(
    directory: str | Path, kind: str, fields: dict | None = None, *, skip: tuple[str, ...] = ()
) -> dict:
    """Write ``directory/manifest.json`` last and atomically: ``fields``, the ``kind`` and the
    SHA-256 of every file in the folder (entries named in ``skip`` left out); returns it."""
    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; expected one of {KINDS}")
    directory = Path(directory)
    data = {k: v for k, v in (fields or {}).items() if k != "unfinished"}
    data.update(kind=kind, files=record_files(directory, skip))
    _write_json(directory / MANIFEST_FILE, data)
    return data


def record_change(directory: str | Path, file: str | Path) -> None:
    """Record the new checksum of ``file`` in the manifest of ``directory`` after adrecall
    changed that one file on purpose (such as the WoBERT flag of a tokenizer config); a folder
    without an adrecall manifest, or one that does not record ``file``, is left alone."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    files = None if manifest is None else manifest.get("files")
    name = Path(file).resolve().relative_to(directory.resolve()).as_posix()
    if isinstance(files, dict) and name in files:
        files[name] = file_sha256(file)
        _write_json(directory / MANIFEST_FILE, manifest)


def verify_folder(directory: str | Path) -> dict | None:
    """Refuse a folder adrecall wrote unless every file its manifest records is there, whole
    and unchanged; returns the manifest, or ``None`` for a folder without an adrecall manifest
    (a user's own model), which is left to its loader.

    Files are hashed through :func:`file_digest`, so a folder verified before in this process
    costs a ``stat`` per file.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        return None
    kind = manifest["kind"]
    if manifest.get("unfinished"):
        raise FolderError(
            f"{directory}: an unfinished adrecall {kind} (the run writing it stopped before its "
            f"end); {_REMEDIES[kind]}"
        )
    verify_files(directory, manifest.get("files") or {}, _REMEDIES[kind], digest=file_digest)
    return manifest


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, cached for this process by (path, device, inode, size, mtime, ctime).

    Loading a model folder hashes each file once (integrity check and weight hash share the
    digests) and loading it again costs a ``stat``. A change that keeps all six keys (timestamps
    forged, or a rewrite within the file system's timestamp tick after the file was hashed) is
    seen only by a new process.
    """
    path = Path(path).resolve()
    st = path.stat()
    return _cached_sha256(
        str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
    )


@lru_cache(maxsize=4096)
def _cached_sha256(path: str, device: int, inode: int, size: int, mtime: int, ctime: int) -> str:
    return file_sha256(path)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _unrecorded(entries: list[str], manifest: dict) -> list[str]:
    """Entries at a folder's root that its manifest's ``files`` do not account for (none can be
    told apart when the manifest has no ``files``: an older or unfinished write)."""
    files = manifest.get("files")
    if manifest.get("unfinished") or not isinstance(files, dict):
        return []
    owned = {MANIFEST_FILE, _MANIFEST_TMP} | {name.split("/")[0] for name in files}
    return sorted(e for e in entries if e not in owned)


def _shown(entries: list[str]) -> str:
    return ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")


def _check_apart(out: Path, inputs: Iterable[str | Path]) -> None:
    target = out.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == target or source.is_relative_to(target) or target.is_relative_to(source):
            raise FolderError(
                f"--out {str(out)!r} is, holds or sits inside the input {str(given)!r}, which "
                "the command reads while it writes; choose an output folder apart from it"
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
