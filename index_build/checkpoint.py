"""The checkpoint directory of a build: finished shards plus the settings they were made with.

It lives beside the output (``<out>.partial``), not inside it, so an existing index at
``<out>`` stays loadable while a new one is built. A resumed build must use the same source
file, model and chunking; otherwise its shards would not fit together and it is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


class CheckpointError(ValueError):
    """A checkpoint cannot be used for this build; the message says why and what to do."""


def checkpoint_dir(out: Path) -> Path:
    """Where the build of ``out`` keeps its shards until the index is written."""
    return out.parent / f"{out.name}.partial"


def open_checkpoint(out: Path, state: dict[str, Any], resume: bool) -> Path:
    """Create or reopen the checkpoint of ``out`` for a build with ``state`` settings.

    Without ``resume`` an existing checkpoint is an error (its work would be lost silently);
    with ``resume`` its recorded settings must equal ``state``.
    """
    directory = checkpoint_dir(out)
    state_file = directory / STATE_FILE
    if state_file.is_file():
        if not resume:
            raise CheckpointError(
                f"an unfinished build of {out} exists in {directory}; pass --resume "
                f"(resume=True) to continue it, or delete that directory to start over"
            )
        recorded = json.loads(state_file.read_text(encoding="utf-8"))
        differing = sorted(k for k in set(state) | set(recorded) if state.get(k) != recorded.get(k))
        if differing:
            details = "; ".join(f"{k}: was {recorded.get(k)!r}, now {state.get(k)!r}" for k in differing)
            raise CheckpointError(
                f"cannot resume the build in {directory}: settings differ ({details}); "
                "resume with the same settings or delete that directory to start over"
            )
        return directory
    if directory.exists():
        shutil.rmtree(directory)  # a checkpoint that died before recording its settings
    directory.mkdir(parents=True)
    temporary = directory / (STATE_FILE + ".tmp")
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    temporary.replace(state_file)
    return directory


def remove_checkpoint(out: Path) -> None:
    """Delete the checkpoint once the index is safely in place."""
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
