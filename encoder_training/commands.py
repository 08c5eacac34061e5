"""``adrecall diagnose`` and ``adrecall train-encoder``: anisotropy report and bi-encoder training."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adrecall.cli_options import Command, add_commands, call_with_options, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diagnose`` and ``train-encoder`` subcommands."""
    commands: tuple[Command, ...] = (
        ("diagnose", _diagnose_options, run_diagnose,
         "anisotropy report: how crowded each pooling variant's vectors are on your texts",
         ("Embed a sample of texts with raw CLS, mean pooling, first-last average and the "
          "model's own pooling (optionally BERT-whitened) and report the mean cosine of random "
          "pairs, of labelled-relevant pairs, and the variance share of the top 1/10 principal "
          "components. Writes a text report with a .json and a .png histogram beside it.")),
        ("train-encoder", _train_options, run_train_encoder,
         "fine-tune the bi-encoder on labelled (query, ad, label) pairs",
         ("Fine-tune a sentence-transformers bi-encoder: MultipleNegativesRankingLoss over "
          "(query, relevant ad) with hard negatives mined from an index (--index), or CoSENT on "
          "graded labels. Evaluates a dev split before training and after each epoch and saves "
          "the best epoch as a model folder that `adrecall build --model` takes.")),
    )
    add_commands(subparsers, commands)


def _pair_columns(parser: argparse.ArgumentParser) -> None:
    from adrecall.cli_options import add_no_normalize, add_pair_columns

    add_pair_columns(parser)
    parser.add_argument("--relevance-threshold", type=float, default=1.0,
                        help="a pair is relevant when label >= this (default 1)")
    add_no_normalize(parser)


def _diagnose_options(parser: argparse.ArgumentParser) -> None:
    from adrecall.cli_options import add_model, add_old_spelling, add_output_switches

    parser.add_argument("--texts", required=True, help="sample texts: .txt (one per line) or a .csv/.tsv/.jsonl/.parquet table")
    add_model(parser)
    parser.add_argument("--labelled", default=None, help="optional labelled (query, text, label) table for relevant-pair figures")
    add_old_spelling(parser, "--pairs", "--labelled", "labelled")
    parser.add_argument("--out", default="anisotropy_report.txt", help="text report path; .json and .png go beside it (default anisotropy_report.txt)")
    parser.add_argument("--max-texts", type=int, default=2000, help="sample at most this many texts (default 2000)")
    parser.add_argument("--random-pairs", type=int, default=20_000, help="random text pairs measured (default 20000)")
    parser.add_argument("--whiten", nargs="?", const=True, default=False, metavar="",
                        help="also report BERT-whitened model vectors fitted on the sample, all "
                        "dimensions (as in build)")
    parser.add_argument("--whiten-dim", type=int, nargs="+", default=[], metavar="N",
                        help="also report whitened vectors cut to N dimensions (several allowed)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    parser.add_argument("--max-length", type=int, default=None, help="token limit (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    _pair_columns(parser)
    add_output_switches(parser)


def run_diagnose(args: argparse.Namespace) -> int:
    """``adrecall diagnose``: read inputs, diagnose, write the report files, print the table."""
    from encoder_training.diagnostics import diagnose, parse_whiten_dims, read_texts, write_report
    from encoder_training.pairs import PairColumns, read_pairs

    if args.random_pairs < 1:
        raise ValueError(f"--random-pairs must be at least 1, got {args.random_pairs}")
    whiten_dims = parse_whiten_dims(_whiten_spec(args))
    texts = read_texts(args.texts, text_column=args.text_column, max_texts=args.max_texts, seed=args.seed)
    pairs = None
    if args.labelled:
        columns = PairColumns(args.query_column, args.text_column, args.label_column)
        pairs = read_pairs(args.labelled, columns, role="labelled")
    report = call_with_options(diagnose, args, texts, pairs=pairs, whiten_dims=whiten_dims,
                               n_pairs=args.random_pairs)
    paths = write_report(report, args.out)
    return print_result(args, report, (
        report.text() + f"\nwrote {paths['text']}, {paths['json']} and {paths['png']}"
    ))


def _whiten_spec(args: argparse.Namespace) -> str:
    """``--whiten`` (all dimensions) and ``--whiten-dim N ...`` as ``parse_whiten_dims`` reads
    them; the old ``--whiten full,256,128`` still works, with a warning."""
    if isinstance(args.whiten, str):
        print("adrecall diagnose: warning: --whiten DIMS is deprecated and will be removed in "
              "the next release; use --whiten --whiten-dim N ... (all dimensions with --whiten, "
              "cut ones with --whiten-dim)", file=sys.stderr)
        return args.whiten
    return ",".join((["full"] if args.whiten else []) + [str(d) for d in args.whiten_dim])


def _train_options(parser: argparse.ArgumentParser) -> None:
    from adrecall.cli_options import (
        add_model,
        add_old_spelling,
        add_out,
        add_output_switches,
        add_resumable_out,
        add_training,
    )
    from encoder_training.finetune import TrainEncoderConfig

    d = TrainEncoderConfig()
    parser.add_argument("--train", help="training pairs: .csv/.tsv/.jsonl/.parquet with query, "
                        "text, label (required; not required by argparse so that the old "
                        "--pairs still counts)")
    parser.add_argument("--dev", default=None, help="dev pairs (default: hold out --dev-fraction of the queries)")
    add_out(parser, "folder for the fine-tuned model (new, empty, or one to --overwrite)")
    add_model(parser, what="base model")
    parser.add_argument("--dev-fraction", type=float, default=d.dev_fraction, help="share of queries held out as dev (default 0.1)")
    parser.add_argument("--loss", choices=("mnrl", "cosent"), default=d.loss,
                        help="mnrl: ranking loss with (hard) negatives; cosent: graded labels (default mnrl)")
    parser.add_argument("--index", default=None, help="index directory to mine hard negatives from (mnrl only)")
    parser.add_argument("--hard-negatives", type=int, default=d.hard_negatives, help="negatives per training row for mnrl (default 1)")
    parser.add_argument("--mining-candidates", type=int, default=d.mining_candidates, help="index hits searched per query when mining (default 30)")
    add_training(parser, d, lr=d.lr)
    parser.add_argument("--max-train-rows", type=int, default=None, help="subsample the training rows")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke tests)")
    add_resumable_out(parser, "a fine-tuned encoder")
    _pair_columns(parser)
    add_output_switches(parser)
    for old, new, dest in (("--pairs", "--train", "train"), ("--dev-pairs", "--dev", "dev"),
                           ("--max-seq-length", "--max-length", "max_length")):
        add_old_spelling(parser, old, new, dest, type=int if dest == "max_length" else None)
    add_old_spelling(parser, "--keep-checkpoints", "--keep-checkpoint", "keep_checkpoint",
                     switch=True)
    add_old_spelling(parser, "--bf16", "--precision bf16", "precision", switch=True, const="bf16")


def run_train_encoder(args: argparse.Namespace) -> int:
    """``adrecall train-encoder``: validate inputs, train, print the dev figures."""
    from encoder_training.finetune import TrainEncoderConfig, train_encoder
    from encoder_training.pairs import PairColumns

    if args.train is None:
        raise ValueError("give the training pairs with --train PAIRS")
    config = call_with_options(TrainEncoderConfig, args)
    summary = train_encoder(
        args.train,
        args.out,
        model=args.model,
        dev=args.dev,
        config=config,
        index=args.index,
        columns=PairColumns(args.query_column, args.text_column, args.label_column),
    )
    key = summary.primary_metric
    filled = summary.hard_negatives.get("random_filled")
    return print_result(args, summary, (
        f"trained {summary.loss} from {summary.model} on {summary.train_rows} rows in "
        f"{summary.seconds:.0f} s "
        f"({summary.steps} steps); dev {key}: {summary.dev_before[key]:.4f} before, "
        f"{summary.best.get(key, float('nan')):.4f} kept ({summary.improvement:+.4f}); "
        f"model saved to {Path(summary.out)}"
        + (f"\nnote: {filled} of {summary.train_rows} rows got a random negative (no --index, "
           "or too few mined negatives)" if filled else "")
    ))
