"""``adrecall train-reranker``: train BertSim on labelled pairs from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adrecall.cli_options import call_with_options, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-reranker`` subcommand."""
    from adrecall.cli_options import (
        add_model,
        add_no_normalize,
        add_out,
        add_output_switches,
        add_pair_options,
        add_resumable_out,
        add_training,
    )
    from rerank.config import METRICS, POOLINGS, TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser(
        "train-reranker",
        help="train the BertSim cross-encoder on labelled (query, text, label) pairs",
        description="Train BertSim (MSE on graded labels; the best dev epoch is kept). Running "
        "the same command again after a kill resumes from OUT/checkpoint.",
    )
    add_pair_options(p)
    add_out(p, "output folder for the trained model")
    add_model(p, default="default", what="encoder to start from")
    p.add_argument("--label-min", type=float, default=0.0,
                   help="lowest label of the data's scale (mapped to 0)")
    p.add_argument("--label-max", type=float, default=2.0,
                   help="highest label of the data's scale (mapped to 2), e.g. 5 for STS-B")
    add_training(p, d, lr=d.encoder_lr,
                 max_length_help="tokens per pair (None: 99%% of the training pairs whole)")
    p.add_argument("--head-lr-factor", type=float, default=d.head_lr_factor,
                   help="head learning rate = this × --lr")
    p.add_argument("--new-vocab-lr-factor", type=float, default=d.new_vocab_lr_factor,
                   help="rows a vocabulary extension added learn at this × --lr")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm)
    p.add_argument("--pooling", choices=POOLINGS, default=d.pooling)
    add_no_normalize(p)
    p.add_argument("--select-metric", choices=METRICS,
                   default=d.select_metric, help="dev metric that picks the best epoch")
    p.add_argument("--eval-every", type=int, default=d.eval_every,
                   help="dev evaluation every N steps as well as at epoch ends (0: epoch ends)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="stop after N dev evaluations without improvement (0: never)")
    p.add_argument("--index", help="the index BertSim will rerank: mined negatives come from it, "
                   "and with --dev the weight of its scores in --fusion weighted is chosen")
    p.add_argument("--mined-negatives", type=int, default=d.mined_negatives,
                   help="per training query, texts the index retrieves (not labelled for it) "
                   "added as label 0; needs --index")
    p.add_argument("--mining-candidates", type=int, default=d.mining_candidates,
                   help="how deep the index is searched for mined negatives")
    p.add_argument("--random-negatives", type=int, default=d.random_negatives,
                   help="per training query, random texts of other queries added as label 0")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="steps between resume checkpoints (0: at epoch ends only)")
    add_resumable_out(p, "a BertSim (and its checkpoint)")
    add_output_switches(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from rerank.pairs import PairFormat
    from rerank.training import TrainConfig, train_reranker

    fmt = call_with_options(PairFormat, args)
    config = call_with_options(TrainConfig, args, encoder_lr=args.lr)
    first_stage = None
    if args.index:
        from adrecall.folders import BERTSIM, check_out
        from adrecall.resume_checkpoint import CHECKPOINT_NAMES
        from retrieval.retriever import Retriever

        # refuse a bad --out before the index's model loads (train_reranker checks it again)
        check_out(args.out, BERTSIM, overwrite=True, keep=CHECKPOINT_NAMES, inputs=(args.index,))
        first_stage = Retriever.load(args.index)
    result = train_reranker(args.train, args.out, model=args.model, dev=args.dev, config=config,
                            pair_format=fmt, first_stage=first_stage)
    manifest = json.loads((Path(result.out) / "manifest.json").read_text(encoding="utf-8"))
    summary = {"out": result.out, "model": result.model, "seconds": round(result.seconds, 1),
               "best_epoch": result.best_epoch,
               "best_step": result.best_step, "best_metrics": result.best_metrics,
               "negatives_added": {k: manifest["training"]["negatives"][k]
                                   for k in ("mined", "random")},
               "fusion_weight": (manifest.get("fusion") or {}).get("weight")}
    best = ", ".join(f"{k} {v:.4f}" for k, v in (result.best_metrics or {}).items()
                     if isinstance(v, float))
    return print_result(args, summary, (
        f"trained BertSim from {result.model} -> {result.out} in {result.seconds:.0f} s; "
        f"kept step {result.best_step} (epoch {result.best_epoch})"
        + (f", dev {best}" if best else "")
        + f"; negatives added: {summary['negatives_added']}"
        + (f"; fusion weight {summary['fusion_weight']:g}"
           if summary["fusion_weight"] is not None else "")
    ))
