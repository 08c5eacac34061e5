"""``adrecall build``: the batch job that turns an ad table into an index directory."""

from __future__ import annotations

import argparse

from adrecall.cli_options import call_with_options, print_result
from index_build.build_job import build_index
from retrieval.faiss_index import INDEX_TYPES
from retrieval.lexical_index import LANGUAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build`` subcommand."""
    from adrecall.cli_options import (
        add_backend,
        add_model,
        add_no_normalize,
        add_out,
        add_output_switches,
    )

    parser = subparsers.add_parser(
        "build",
        help="embed an ad table and write a searchable index directory",
        description="Embed every ad of a CSV/TSV/JSONL/Parquet table into a FAISS index directory.",
    )
    parser.add_argument("--ads", required=True, help="ad table: .csv, .tsv, .jsonl or .parquet")
    add_out(parser, "index directory to write: new, empty or an index, which is replaced atomically")
    add_model(parser, what="bi-encoder")
    add_backend(parser)
    parser.add_argument("--index-type", choices=INDEX_TYPES, default="flat", help="FAISS index type (default flat: exact)")
    parser.add_argument("--batch-size", type=int, default=128, help="texts per model forward pass (default 128)")
    parser.add_argument("--chunk-rows", type=int, default=4096, help="ads read and checkpointed per chunk (default 4096)")
    parser.add_argument("--id-column", default="ad_id", help="column holding the ad id (default ad_id)")
    parser.add_argument("--text-column", default="text", help="column holding the ad text (default text)")
    add_no_normalize(parser)
    parser.add_argument("--whiten", action="store_true", help="fit BERT-whitening on the ads and apply it to ads and queries")
    parser.add_argument("--whiten-dim", type=int, default=None, help="keep this many whitened dimensions (default: all)")
    parser.add_argument("--lexical", action="store_true",
                        help="also write a BM25 index of the ad texts, for search --mode "
                        "lexical|hybrid")
    parser.add_argument("--lexical-language", choices=LANGUAGES, default="auto",
                        help="lexical tokenizer: en words, zh jieba words, mixed (jieba for CJK "
                        "runs, words elsewhere), or auto from the ads (default)")
    parser.add_argument("--resume", action="store_true", help="continue a build that was killed, from its checkpoint")
    add_output_switches(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    summary = call_with_options(build_index, args, args.ads, args.out)
    return print_result(args, summary, (
        f"built {summary.out}: {summary.count} ads, dimension {summary.dimension}, "
        f"{summary.index_type} index"
        + (f" + lexical ({summary.lexical} tokens)" if summary.lexical else "")
        + f", {summary.seconds:.1f} s, {summary.ads_per_second:.0f} ads/s, "
        f"{summary.bytes_on_disk / 1e6:.1f} MB on disk, backend {summary.backend}"
        + (f", {summary.resumed_ads} ads taken from the checkpoint" if summary.resumed_ads else "")
        + (f"; {summary.truncated} texts truncated to the model's maximum length" if summary.truncated else "")
    ))
