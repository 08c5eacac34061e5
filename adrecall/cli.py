"""The ``adrecall`` command line: one parser, subcommands registered by each package.

Each package that offers commands has a ``commands`` module with ``register(subparsers)``,
which adds its subcommands and sets ``func`` on each: ``func(args) -> int`` (exit status).
Packages are imported here only, so no package imports another through the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "index_build.commands",
    "retrieval.commands",
    "rerank.commands",
    "encoder_training.commands",
    "domain_adapt.commands",
    "adrecall.info_command",
    "service.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``adrecall`` parser with every package's subcommands."""
    parser = argparse.ArgumentParser(
        prog="adrecall", description="Find the ads whose meaning matches a search query."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue  # that package offers no commands yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``adrecall`` subcommand; errors from bad input print one line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # tokenizers' own threads fight torch's for 2 cores and warn after a fork: the command
    # line turns them off unless the user chose (importing adrecall sets nothing)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if getattr(args, "json", False) is True:  # stdout is for the JSON alone
            args.json_stdout = sys.stdout
            with contextlib.redirect_stdout(sys.stderr):
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as exc:
        print(f"adrecall {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
