"""``adrecall build``: the batch job that turns an ad table into an index directory."""

from __future__ import annotations

import argparse

from adrecall.cli_options import call_with_options, print_result
from index_build.build_job import build_index
from index_build.index_choice import CHOICES
from retrieval.lexical_index import LANGUAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build``, ``update`` and ``compact`` subcommands."""
    _register_build(subparsers)
    _register_update(subparsers)
    _register_compact(subparsers)


def _register_build(subparsers: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--index-type", choices=CHOICES, default="flat",
                        help="FAISS index type (default flat: exact); auto picks one from the "
                        "number of ads, --max-memory and --target-recall")
    parser.add_argument("--max-memory", default=None,
                        help="memory budget of the FAISS index, e.g. 512M or 2G (binary units); "
                        "a type that needs more is refused, auto picks among those that fit")
    parser.add_argument("--target-recall", type=float, default=None,
                        help="tune nprobe/efSearch on held-out ads until recall@10 against exact "
                        "search reaches this (default: fixed parameters; 0.95 with auto)")
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
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--dask", default=None, metavar="ADDRESS",
                         help="encode the chunks on the Dask cluster whose scheduler is at ADDRESS "
                         "(e.g. tcp://10.0.0.5:8786); this machine merges the shards")
    cluster.add_argument("--workers", type=int, default=None, metavar="N",
                         help="encode the chunks on a new local Dask cluster of N processes, one "
                         "thread each, bound to 127.0.0.1")
    parser.add_argument("--shard-store", default=None, metavar="URL",
                        help="folder or fsspec URL (file://, s3://, ...) where the chunks' shards "
                        "are written; every worker and this machine must reach it (default: "
                        "OUT.partial beside the index)")
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
        + (f"; encoded on {summary.cluster}, {summary.retried_chunks} chunks retried"
           if summary.cluster else "")
        + (f"; {summary.truncated} texts truncated to the model's maximum length" if summary.truncated else "")
        + (_tuning_text(summary.tuning) if summary.tuning else "")
    ))


def _tuning_text(tuning: dict) -> str:
    """The measured recall, the parameter chosen, and any note (a missed target, auto's
    choice)."""
    params = ", ".join(f"{k} {v}" for k, v in tuning["search_params"].items())
    return (f"; recall@10 {tuning['recall_at_10']:.3f} on {tuning['queries']} held-out ads"
            + (f" ({params})" if params else "") + (f"; {tuning['note']}" if tuning["note"] else ""))


def _register_update(subparsers: argparse._SubParsersAction) -> None:
    from adrecall.cli_options import add_backend, add_model, add_output_switches

    parser = subparsers.add_parser(
        "update", help="add, replace and delete ads of an index without rebuilding it",
        description="Add the ads of --ads (an ad id already in the index replaces that ad) and "
        "delete the ad ids listed in --delete; the index is replaced atomically.")
    parser.add_argument("index", help="index directory written by `adrecall build`")
    parser.add_argument("--ads", default=None, help="ads to add or replace: .csv, .tsv, .jsonl "
                        "or .parquet with the build's columns")
    parser.add_argument("--delete", default=None, help="text file of ad ids to delete, one a line")
    add_model(parser, default=None, what="bi-encoder")
    add_backend(parser)
    parser.add_argument("--batch-size", type=int, default=128, help="texts per model forward pass (default 128)")
    parser.add_argument("--id-column", default="ad_id", help="column holding the ad id (default ad_id)")
    parser.add_argument("--text-column", default="text", help="column holding the ad text (default text)")
    add_output_switches(parser)
    parser.set_defaults(func=_run_update)


def _run_update(args: argparse.Namespace) -> int:
    from index_build.index_update import update_index

    summary = call_with_options(update_index, args, args.index)
    return print_result(args, summary, (
        f"updated {summary.index}: {summary.added} added, {summary.replaced} replaced, "
        f"{summary.deleted} deleted"
        + (f" ({summary.not_found} ids to delete were not in the index)" if summary.not_found else "")
        + f"; {summary.count} ads"
        + (f", {summary.tombstones} removed vectors filtered until `adrecall compact`"
           if summary.tombstones else "")
        + f", {summary.seconds:.1f} s, backend {summary.backend}"
    ))


def _register_compact(subparsers: argparse._SubParsersAction) -> None:
    from adrecall.cli_options import add_output_switches

    parser = subparsers.add_parser(
        "compact", help="rebuild an updated index as a fresh build of its ads would be",
        description="Drop removed HNSW vectors, renumber the ads and rebuild flat, HNSW and "
        "IVF-Flat indexes from their stored vectors (IVF re-trained); no ad is re-embedded. "
        "The index is replaced atomically.")
    parser.add_argument("index", help="index directory written by `adrecall build`")
    add_output_switches(parser)
    parser.set_defaults(func=_run_compact)


def _run_compact(args: argparse.Namespace) -> int:
    from index_build.compaction import compact_index

    summary = call_with_options(compact_index, args, args.index)
    return print_result(args, summary, (
        f"compacted {summary.index}: {summary.count} ads, {summary.dropped_tombstones} removed "
        f"vectors dropped, {'rebuilt' if summary.rebuilt else 'renumbered'}, "
        f"{summary.bytes_before / 1e6:.1f} -> {summary.bytes_after / 1e6:.1f} MB, "
        f"{summary.seconds:.1f} s"
    ))
