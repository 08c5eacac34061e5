"""Command-line options that several ``adrecall`` subcommands share, declared once.

One spelling per concept across the subcommands, and the same name in the code the command
calls (so :func:`call_with_options` can pass options on by name): the model is ``--model``, an output folder
``--out``, a token budget ``--max-length``, labelled pairs ``--train``/``--dev``, a kept
checkpoint ``--keep-checkpoint``, precision ``--precision``; ``--json`` prints JSON (and
nothing else) to stdout and ``--quiet`` hides progress bars. Spellings that earlier releases
used stay for one release as hidden aliases that warn (:func:`add_old_spelling`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from adrecall.settings_checks import PRECISIONS

Command = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str, str
]
"""A subcommand as :func:`add_commands` takes it: ``(name, add_options, run, help,
description)``; ``add_options(parser)`` declares its options, ``run(args)`` carries it out."""


def add_commands(subparsers: argparse._SubParsersAction, commands: Iterable[Command]) -> None:
    """Add each subcommand of ``commands`` (see :data:`Command`)."""
    for name, add_options, run, help_text, description in commands:
        parser = subparsers.add_parser(name, help=help_text, description=description)
        add_options(parser)
        parser.set_defaults(func=run)


class _OldSpelling(argparse.Action):
    """Accepts a retired option spelling, says which one replaces it, stores into its dest."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated and will be removed in "
              f"the next release; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_old_spelling(
    parser: argparse.ArgumentParser, old: str, new: str, dest: str, *,
    switch: bool = False, const: Any = True, type: Any = None,
) -> None:
    """Accept ``old`` as a hidden, warning alias of ``new`` (which stores into ``dest``).
    ``switch``: the old spelling takes no value and stores ``const``."""
    parser.add_argument(
        old, dest=dest, action=_OldSpelling, new=new, help=argparse.SUPPRESS,
        default=argparse.SUPPRESS, nargs=0 if switch else None,
        const=const if switch else None, type=type,
    )


def add_model(parser: argparse.ArgumentParser, default: str | None = "default",
              what: str = "model") -> None:
    """``--model``: 'default' (the embedded all-MiniLM-L6-v2) or a local model folder."""
    parser.add_argument(
        "--model", default=default,
        help=f"{what}: 'default' (embedded all-MiniLM-L6-v2) or a local Hugging Face / "
        "sentence-transformers folder" + ("" if default else " (default: the index's model)"),
    )


def add_backend(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--threads``: what runs the model (:mod:`adrecall.backends`)."""
    from adrecall.backends import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="inference back-end: auto (default: the fastest installed one that "
                        "agrees with fp32 on probe texts), torch (fp32), torch-bf16, openvino, "
                        "onnx")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads the back-end uses (default: its own choice)")


def add_out(parser: argparse.ArgumentParser, what: str) -> None:
    """The required ``--out`` folder."""
    parser.add_argument("--out", required=True, help=what)


def add_output_switches(parser: argparse.ArgumentParser, *, progress: bool = True) -> None:
    """``--json`` (the result as JSON alone on stdout) and, where there is a progress bar,
    ``--quiet``."""
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON to stdout (and nothing else there)")
    if progress:
        parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_no_normalize(parser: argparse.ArgumentParser) -> None:
    """``--no-normalize``: texts as they are, without adrecall's text normalisation."""
    parser.add_argument("--no-normalize", action="store_true",
                        help="use texts as they are, without adrecall's text normalisation")


def add_pair_options(parser: argparse.ArgumentParser, *, dev: bool = True,
                     required: bool = True) -> None:
    """``--train`` and ``--dev`` labelled-pair tables and their column names."""
    parser.add_argument("--train", required=required,
                        help="training pairs: .csv/.tsv/.jsonl/.parquet with query, text, label")
    if dev:
        parser.add_argument("--dev", default=None,
                            help="dev pairs, same columns: picks the best checkpoint")
    add_pair_columns(parser)


def add_pair_columns(parser: argparse.ArgumentParser) -> None:
    """The column names of labelled-pair tables."""
    parser.add_argument("--query-column", default="query", help="query column (default query)")
    parser.add_argument("--text-column", default="text", help="ad text column (default text)")
    parser.add_argument("--label-column", default="label",
                        help="graded label column (default label)")


def add_training(parser: argparse.ArgumentParser, defaults: Any, *, lr: float,
                 max_length_help: str = "tokens per text while training") -> None:
    """The optimisation options every training command shares, with ``defaults``' values
    (an object with ``epochs``, ``batch_size``, ``max_length``, ``warmup_ratio``, ``seed``,
    ``precision``) and learning rate ``lr``."""
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"passes over the training data (default {defaults.epochs})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"training rows per step (default {defaults.batch_size})")
    parser.add_argument("--max-length", type=int, default=defaults.max_length,
                        help=f"{max_length_help} (default {defaults.max_length})")
    parser.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr:g})")
    parser.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio,
                        help=f"share of steps for linear warm-up (default {defaults.warmup_ratio})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed (default {defaults.seed})")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help="bf16: CPU autocast on the AMX units "
                        f"(default {defaults.precision})")


def add_resumable_out(parser: argparse.ArgumentParser, what: str) -> None:
    """``--overwrite`` and ``--keep-checkpoint`` of a command whose output is ``what``."""
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} already in --out; any other folder is refused")
    parser.add_argument("--keep-checkpoint", action="store_true",
                        help="keep the resume checkpoint after training finishes")


def print_json(args: argparse.Namespace, data: Any, *, indent: int | None = 2) -> None:
    """``data`` as JSON on the command's stdout. While a ``--json`` command runs, whatever else
    writes to stdout (a library's log lines) is sent to stderr by :func:`adrecall.cli.main`, so
    stdout holds the JSON alone."""
    stream = getattr(args, "json_stdout", None) or sys.stdout
    print(json.dumps(data, indent=indent, ensure_ascii=False), file=stream)


def call_with_options(target: Callable[..., Any], args: argparse.Namespace, *positional: Any,
                      **given: Any) -> Any:
    """Call ``target`` (a function, or a typed settings class) with ``positional``, then each of
    its other parameters that a parsed option of the same name sets, then ``given`` (parameters
    whose value is not an option of their name, e.g. ``encoder_lr=args.lr``). ``--no-normalize``
    sets ``normalize_text`` and ``normalize``, ``--quiet`` sets ``progress``, where the command
    has those switches."""
    options = vars(args).copy()
    if "no_normalize" in options:
        options["normalize_text"] = options["normalize"] = not options["no_normalize"]
    if "quiet" in options:
        options["progress"] = not options["quiet"]
    named = list(inspect.signature(target).parameters.values())[len(positional):]
    keywords = {p.name: options[p.name] for p in named
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name in options}
    return target(*positional, **(keywords | given))


def print_result(args: argparse.Namespace, result: Any, text: str) -> int:
    """A command's last act: ``result`` (a dict, or an object with ``to_dict()``) as JSON with
    ``--json``, else ``text`` for a person; the command's exit status (0)."""
    if args.json:
        print_json(args, result if isinstance(result, dict) else result.to_dict())
    else:
        print(text)
    return 0
