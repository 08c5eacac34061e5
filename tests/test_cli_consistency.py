"""One spelling per concept across the subcommands, old spellings as warning aliases, and
``--json`` output that is JSON alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from adrecall.cli import build_parser, main
from encoder_training.tiny_model import make_tiny_model

RETIRED = ("--pairs", "--dev-pairs", "--max-seq-length", "--keep-checkpoints", "--bf16")


def _subparsers() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)


def test_every_command_spells_shared_concepts_one_way() -> None:
    commands = _subparsers()
    for name, sub in commands.items():
        visible = {s for a in sub._actions if a.help != "==SUPPRESS==" for s in a.option_strings}
        assert not visible & set(RETIRED), (name, visible & set(RETIRED))
        assert "--json" in visible, f"{name} has no --json"
        if "--keep-checkpoint" in visible or "--epochs" in visible:
            assert {"--precision", "--max-length", "--lr", "--seed", "--quiet"} <= visible, name
    trainers = [commands[n] for n in ("train-reranker", "train-encoder")]
    for sub in trainers:
        visible = {s for a in sub._actions for s in a.option_strings}
        assert {"--train", "--dev", "--out", "--model", "--keep-checkpoint"} <= visible


@pytest.mark.parametrize(
    ("argv", "dest", "value", "new"),
    [
        (["--pairs", "p.csv"], "train", "p.csv", "--train"),
        (["--dev-pairs", "d.csv"], "dev", "d.csv", "--dev"),
        (["--max-seq-length", "32"], "max_length", 32, "--max-length"),
        (["--keep-checkpoints"], "keep_checkpoint", True, "--keep-checkpoint"),
        (["--bf16"], "precision", "bf16", "--precision bf16"),
    ],
)
def test_old_train_encoder_spellings_still_parse_and_warn(argv, dest, value, new, capsys) -> None:
    base = ["train-encoder", "--out", "o"] + ([] if dest == "train" else ["--train", "t.csv"])
    args = build_parser().parse_args(base + argv)
    assert getattr(args, dest) == value
    assert f"{argv[0]} is deprecated and will be removed in the next release; use {new}" in (
        capsys.readouterr().err)


def test_diagnose_whiten_is_a_switch_with_dimensions_apart(capsys) -> None:
    from encoder_training.commands import _whiten_spec

    parse = build_parser().parse_args
    assert _whiten_spec(parse(["diagnose", "--texts", "t.txt", "--whiten"])) == "full"
    assert _whiten_spec(parse(["diagnose", "--texts", "t.txt", "--whiten-dim", "256", "128"])) == (
        "256,128")
    assert _whiten_spec(parse(["diagnose", "--texts", "t.txt"])) == ""
    assert _whiten_spec(parse(["diagnose", "--texts", "t.txt", "--whiten", "full,64"])) == "full,64"
    assert "--whiten DIMS is deprecated" in capsys.readouterr().err


def test_train_encoder_json_prints_json_alone(tmp_path: Path, capsys) -> None:
    """The trainer's log dicts once reached stdout ahead of the summary."""
    model = make_tiny_model(tmp_path / "tiny")
    rows = [(f"query {i}", f"ad text {i} {w}", 2 if w == "match" else 0)
            for i in range(8) for w in ("match", "other")]
    path = tmp_path / "pairs.csv"
    pd.DataFrame(rows, columns=["query", "text", "label"]).to_csv(path, index=False)
    code = main(["train-encoder", "--train", str(path), "--out", str(tmp_path / "out"),
                 "--model", str(model), "--loss", "cosent", "--max-steps", "2",
                 "--batch-size", "4", "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["loss"] == "cosent" and summary["steps"] == 2
