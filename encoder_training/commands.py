"""``adrecall diagnose`` and ``adrecall train-encoder``: anisotropy report and bi-encoder training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diagnose`` and ``train-encoder`` subcommands."""
    _register_diagnose(subparsers)
    _register_train(subparsers)


def _pair_columns(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--query-column", default="query", help="labelled pairs: query column (default query)")
    parser.add_argument("--text-column", default="text", help="ad text column of the tables (default text)")
    parser.add_argument("--label-column", default="label", help="labelled pairs: graded label column (default label)")
    parser.add_argument("--relevance-threshold", type=float, default=1.0,
                        help="a pair is relevant when label >= this (default 1)")
    parser.add_argument("--no-normalize", action="store_true",
                        help="use texts as they are, without adrecall's text normalisation")


def _register_diagnose(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="anisotropy report: how crowded each pooling variant's vectors are on your texts",
        description=(
            "Embed a sample of texts with raw CLS, mean pooling, first-last average and the model's "
            "own pooling (optionally BERT-whitened) and report the mean cosine of random pairs, of "
            "labelled-relevant pairs, and the variance share of the top 1/10 principal components. "
            "Writes a text report with a .json and a .png histogram beside it."
        ),
    )
    parser.add_argument("--texts", required=True, help="sample texts: .txt (one per line) or a .csv/.tsv/.jsonl/.parquet table")
    parser.add_argument("--model", default=None, help="local model directory (default: embedded all-MiniLM-L6-v2)")
    parser.add_argument("--pairs", default=None, help="optional labelled (query, text, label) table for relevant-pair figures")
    parser.add_argument("--out", default="anisotropy_report.txt", help="text report path; .json and .png go beside it (default anisotropy_report.txt)")
    parser.add_argument("--max-texts", type=int, default=2000, help="sample at most this many texts (default 2000)")
    parser.add_argument("--random-pairs", type=int, default=20_000, help="random text pairs measured (default 20000)")
    parser.add_argument("--whiten", default=None, metavar="DIMS",
                        help="also report BERT-whitened model vectors fitted on the sample, e.g. 'full,256,128'")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    parser.add_argument("--max-length", type=int, default=None, help="token limit (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    _pair_columns(parser)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_diagnose)


def run_diagnose(args: argparse.Namespace) -> int:
    """``adrecall diagnose``: read inputs, diagnose, write the report files, print the table."""
    from encoder_training.diagnostics import diagnose, parse_whiten_dims, read_texts, write_report
    from encoder_training.pairs import PairColumns, read_pairs

    if args.random_pairs < 1:
        raise ValueError(f"--random-pairs must be at least 1, got {args.random_pairs}")
    whiten_dims = parse_whiten_dims(args.whiten)
    texts = read_texts(args.texts, text_column=args.text_column, max_texts=args.max_texts, seed=args.seed)
    pairs = None
    if args.pairs:
        columns = PairColumns(args.query_column, args.text_column, args.label_column)
        pairs = read_pairs(args.pairs, columns, role="labelled")
    report = diagnose(
        texts,
        model=args.model,
        pairs=pairs,
        whiten_dims=whiten_dims,
        relevance_threshold=args.relevance_threshold,
        n_pairs=args.random_pairs,
        seed=args.seed,
        batch_size=args.batch_size,
        max_length=args.max_length,
        normalize_text=not args.no_normalize,
        show_progress=not args.quiet,
    )
    paths = write_report(report, args.out)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.text(), end="")
        print(f"\nwrote {paths['text']}, {paths['json']} and {paths['png']}")
    return 0


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-encoder",
        help="fine-tune the bi-encoder on labelled (query, ad, label) pairs",
        description=(
            "Fine-tune a sentence-transformers bi-encoder: MultipleNegativesRankingLoss over "
            "(query, relevant ad) with hard negatives mined from an index (--index), or CoSENT on "
            "graded labels. Evaluates a dev split before training and after each epoch and saves "
            "the best epoch as a model folder that `adrecall build --model` takes."
        ),
    )
    parser.add_argument("--pairs", required=True, help="training pairs: .csv/.tsv/.jsonl/.parquet with query, text, label")
    parser.add_argument("--out", required=True, help="folder for the fine-tuned model (must be new or empty)")
    parser.add_argument("--model", default=None, help="base model directory (default: embedded all-MiniLM-L6-v2)")
    parser.add_argument("--dev-pairs", default=None, help="dev pairs (default: hold out --dev-fraction of the queries)")
    parser.add_argument("--dev-fraction", type=float, default=0.1, help="share of queries held out as dev (default 0.1)")
    parser.add_argument("--loss", choices=("mnrl", "cosent"), default="mnrl",
                        help="mnrl: ranking loss with (hard) negatives; cosent: graded labels (default mnrl)")
    parser.add_argument("--index", default=None, help="index directory to mine hard negatives from (mnrl only)")
    parser.add_argument("--hard-negatives", type=int, default=1, help="negatives per training row for mnrl (default 1)")
    parser.add_argument("--mining-candidates", type=int, default=30, help="index hits searched per query when mining (default 30)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training rows (default 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="training rows per step (default 32)")
    parser.add_argument("--lr", type=float, default=2e-5, help="learning rate (default 2e-5)")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of steps for linear warm-up (default 0.1)")
    parser.add_argument("--max-seq-length", type=int, default=64, help="token limit while training (default 64)")
    parser.add_argument("--max-train-rows", type=int, default=None, help="subsample the training rows")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke tests)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (AMX units on these Xeons)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep <out>.checkpoints after training")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a fine-tuned encoder already in --out; any other "
                        "folder is refused")
    _pair_columns(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_train_encoder)


def run_train_encoder(args: argparse.Namespace) -> int:
    """``adrecall train-encoder``: validate inputs, train, print the dev figures."""
    from encoder_training.finetune import TrainEncoderConfig, train_encoder
    from encoder_training.pairs import PairColumns

    config = TrainEncoderConfig(
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio,
        max_seq_length=args.max_seq_length,
        relevance_threshold=args.relevance_threshold,
        hard_negatives=args.hard_negatives,
        mining_candidates=args.mining_candidates,
        dev_fraction=args.dev_fraction,
        max_train_rows=args.max_train_rows,
        max_steps=args.max_steps,
        bf16=args.bf16,
        normalize_text=not args.no_normalize,
        seed=args.seed,
        keep_checkpoints=args.keep_checkpoints,
    )
    summary = train_encoder(
        args.pairs,
        args.out,
        model=args.model,
        dev_pairs=args.dev_pairs,
        index=args.index,
        config=config,
        columns=PairColumns(args.query_column, args.text_column, args.label_column),
        overwrite=args.overwrite,
        show_progress=not args.quiet,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        return 0
    key = summary.primary_metric
    print(
        f"trained {summary.loss} on {summary.train_rows} rows in {summary.seconds:.0f} s "
        f"({summary.steps} steps); dev {key}: {summary.dev_before[key]:.4f} before, "
        f"{summary.best.get(key, float('nan')):.4f} kept ({summary.improvement:+.4f}); "
        f"model saved to {Path(summary.out)}"
    )
    if summary.hard_negatives.get("random_filled"):
        print(f"note: {summary.hard_negatives['random_filled']} of {summary.train_rows} rows got a "
              "random negative (no --index, or too few mined negatives)")
    return 0
