"""The record of domain-adaptation steps a model folder went through (``domain_adapt.json``).

Written by extend-vocab, pretrain and distill, carried over by train-encoder; read by them and
by BertSim training, which gives the embedding rows a vocabulary extension added their own
learning rate.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

HISTORY_FILE = "domain_adapt.json"


def read_history(model_dir: str | Path) -> list[dict]:
    """The steps recorded in ``model_dir/domain_adapt.json`` (empty for an untouched model)."""
    path = Path(model_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get("steps", []))


def added_vocab_start(model_dir: str | Path) -> int | None:
    """First token id that a vocabulary extension added (its ``old_vocab_size``), or ``None``
    when the model's vocabulary was never extended."""
    for step in read_history(model_dir):
        if step.get("step") == "extend-vocab" and step.get("new_vocab_size", 0) > step.get(
            "old_vocab_size", 0
        ):
            return int(step["old_vocab_size"])
    return None


def write_history(out: str | Path, source: str | Path, step: dict) -> None:
    """Write ``out/domain_adapt.json``: the source's steps plus ``step``."""
    steps = read_history(source) + [step]
    tmp = Path(out) / (HISTORY_FILE + ".tmp")
    tmp.write_text(json.dumps({"steps": steps}, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, Path(out) / HISTORY_FILE)


def copy_history(source: str | Path, out: str | Path) -> None:
    """Carry ``source``'s record over to a model trained from it (nothing when it has none)."""
    if (Path(source) / HISTORY_FILE).is_file():
        shutil.copyfile(Path(source) / HISTORY_FILE, Path(out) / HISTORY_FILE)
