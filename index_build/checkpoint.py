"""The checkpoint directory of a build: finished shards plus the settings they were made with.

It lives beside the output (``<out>.partial``), not inside it, so an existing index at
``<out>`` stays loadable while a new one is built. A resumed build must use the same source
file, model and chunking; otherwise its shards would not fit together and it is refused.

A checkpoint is recognisably ours: it is created under a hidden name with its state file
already inside and renamed into place in one step, and removed by being renamed aside in one
step before it is emptied (its state file last). So a ``<out>.partial`` without ``state.json``
was never made by a build, and is refused rather than deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from retrieval.folder_swap import (
    discard_folder,
    fs_step,
    hidden_sibling,
    hidden_siblings,
    remove_folder,
)

STATE_FILE = "state.json"
_ASIDE = "partial"  # tag of a checkpoint being created or removed: .<out>.partial-XXXXXXXX


class CheckpointError(ValueError):
    """A checkpoint cannot be used for this build; the message says why and what to do."""


def checkpoint_dir(out: Path) -> Path:
    """Where the build of ``out`` keeps its shards until the index is written."""
    return out.parent / f"{out.name}.partial"


def check_checkpoint(out: Path, resume: bool) -> None:
    """Before any work: refuse a ``<out>.partial`` that a build did not make, or an unfinished
    build's checkpoint when ``resume`` is off (its work would be lost silently)."""
    directory = checkpoint_dir(out)
    if not directory.exists() and not directory.is_symlink():
        return
    if not _is_checkpoint(directory):
        raise CheckpointError(
            f"{directory} is not an adrecall checkpoint (no {STATE_FILE}), but a build of {out} "
            "keeps its checkpoint there; move it away or choose another --out"
        )
    if not resume:
        raise CheckpointError(
            f"an unfinished build of {out} exists in {directory}; pass --resume "
            f"(resume=True) to continue it, or delete that directory to start over"
        )


def open_checkpoint(out: Path, state: dict[str, Any], resume: bool) -> Path:
    """Create or reopen the checkpoint of ``out`` for a build with ``state`` settings.

    See :func:`check_checkpoint`; with ``resume`` the recorded settings must equal ``state``.
    """
    check_checkpoint(out, resume)
    directory = checkpoint_dir(out)
    if directory.exists():
        recorded = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        differing = sorted(k for k in set(state) | set(recorded) if state.get(k) != recorded.get(k))
        if differing:
            details = "; ".join(f"{k}: was {recorded.get(k)!r}, now {state.get(k)!r}" for k in differing)
            raise CheckpointError(
                f"cannot resume the build in {directory}: settings differ ({details}); "
                "resume with the same settings or delete that directory to start over"
            )
        return directory
    out.parent.mkdir(parents=True, exist_ok=True)
    creating = hidden_sibling(out, _ASIDE)
    creating.mkdir()
    fs_step(f"created {creating}")
    settings = json.dumps(state, indent=2, sort_keys=True)
    (creating / STATE_FILE).write_text(settings, encoding="utf-8")
    fs_step(f"wrote {creating / STATE_FILE}")
    os.rename(creating, directory)
    fs_step(f"renamed {creating} to {directory}")
    return directory


def set_checkpoint_aside(out: Path) -> Path | None:
    """Rename the checkpoint to a hidden name (one step, right after the new index is swapped
    in), so a kill while old files are deleted never leaves ``<out>.partial`` behind; returns
    where it went (``None`` when there was none)."""
    directory = checkpoint_dir(out)
    if not _is_checkpoint(directory):
        return None
    aside = hidden_sibling(out, _ASIDE)
    os.rename(directory, aside)
    fs_step(f"renamed {directory} to {aside}")
    return aside


def remove_checkpoint(out: Path, aside: Path | None = None) -> None:
    """Delete the checkpoint once the index is safely in place (``aside``: where
    :func:`set_checkpoint_aside` put it; otherwise it is set aside first)."""
    aside = aside or set_checkpoint_aside(out)
    if aside is not None and aside.exists():
        discard_folder(aside, last=STATE_FILE)


def clean_up_checkpoint_leftovers(out: Path) -> None:
    """Delete the checkpoints a killed build was creating or removing: hidden
    ``.<out>.partial-XXXXXXXX`` folders that are empty or hold a state file (others stay)."""
    for folder in hidden_siblings(out, _ASIDE):
        if _is_checkpoint(folder) or not any(folder.iterdir()):
            remove_folder(folder, last=STATE_FILE)


def _is_checkpoint(directory: Path) -> bool:
    return directory.is_dir() and not directory.is_symlink() and (directory / STATE_FILE).is_file()


def build_key(state: dict[str, Any], out: Path) -> str:
    """A short key of a build's settings and output, naming its shard files (and its folder in
    a user's shard store), so shards of other settings or another output are never mixed in."""
    text = json.dumps(state, sort_keys=True) + "\n" + str(out.resolve())
    return hashlib.sha256(text.encode()).hexdigest()[:12]
