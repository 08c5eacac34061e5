"""``adrecall search`` and ``adrecall eval``: query or evaluate an index directory from the shell."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

from adrecall.cli_options import print_json
from retrieval.hybrid import check_hybrid
from retrieval.retriever import Hit, Retriever, fusion_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` and ``eval`` subcommands."""
    _register_search(subparsers)
    _register_eval(subparsers)


def _register_search(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search an index with one or more queries",
        description="Print the ads whose meaning best matches each query.",
    )
    parser.add_argument("index", help="index directory written by `adrecall build`")
    parser.add_argument("queries", nargs="+", help="query text(s)")
    parser.add_argument("-k", type=int, default=10, help="hits per query (default 10)")
    _add_model_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON lines, one per query")
    parser.add_argument("--nprobe", type=int, default=None,
                        help="IVF lists probed, for this search only (default: the index's)")
    parser.add_argument("--ef-search", type=int, default=None,
                        help="HNSW search breadth, for this search only (default: the index's)")
    parser.add_argument("--mmap", action="store_true",
                        help="map the FAISS index from disk instead of reading it into memory")
    parser.set_defaults(func=_run)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model and reranking options that ``search`` and ``eval`` share."""
    from adrecall.cli_options import add_backend, add_model
    from adrecall.score_fusion import FUSIONS
    from retrieval.hybrid import HYBRID_FUSIONS, MODES

    parser.add_argument("--mode", choices=MODES, default="dense",
                        help="first stage: dense (FAISS, default), lexical (BM25; the index needs "
                        "build --lexical) or hybrid (both lists fused)")
    parser.add_argument("--hybrid-fusion", choices=HYBRID_FUSIONS, default="rrf",
                        help="how --mode hybrid fuses the lists: reciprocal rank fusion (rrf, "
                        "default) or min-max scaled scores (weighted)")
    parser.add_argument("--lexical-weight", type=float, default=0.5,
                        help="the lexical list's weight in --mode hybrid, 0..1 (default 0.5; "
                        "choose it on dev queries with eval --tune-lexical-weight)")
    add_model(parser, default=None, what="bi-encoder")
    add_backend(parser)
    parser.add_argument("--reranker", default=None, help="BertSim directory to rerank the candidates")
    parser.add_argument("--candidates", type=int, default=100, help="candidates reranked per query (default 100)")
    parser.add_argument("--fusion", choices=FUSIONS, default="rerank",
                        help="final order with --reranker: its score alone (rerank, default) or a "
                        "weighted fusion with the dense score (weighted; the weight the reranker "
                        "stores, chosen on dev, unless --fusion-weight)")
    parser.add_argument("--fusion-weight", type=float, default=None,
                        help="weight of the dense score in --fusion weighted, 0..1")


def _load_retriever(args: argparse.Namespace) -> Retriever:
    reranker = None
    if args.reranker:
        from rerank import BertSim  # the command line may join the packages; the API does not

        reranker = BertSim.load(args.reranker, backend=args.backend, threads=args.threads)
    fusion_settings(args.fusion, args.fusion_weight, reranker)  # before the index and model load
    check_hybrid(args.mode, args.hybrid_fusion, args.lexical_weight)
    retriever = Retriever.load(
        args.index, model=args.model, reranker=reranker, candidates=args.candidates,
        fusion=args.fusion, fusion_weight=args.fusion_weight, hybrid_fusion=args.hybrid_fusion,
        lexical_weight=args.lexical_weight, backend=args.backend, threads=args.threads,
        mmap=getattr(args, "mmap", False))
    chosen = [f"encoder {retriever.encoder.backend_choice.describe()}"]
    if reranker is not None and reranker.backend_choice is not None:
        chosen.append(f"reranker {reranker.backend_choice.describe()}")
    print(f"adrecall {args.command}: backend: {'; '.join(chosen)}", file=sys.stderr)
    return retriever


def _run(args: argparse.Namespace) -> int:
    retriever = _load_retriever(args)
    overrides = {name: value for name, value in
                 (("nprobe", args.nprobe), ("efSearch", args.ef_search)) if value is not None}
    results = retriever.search(list(args.queries), k=args.k, mode=args.mode,
                               search_params=overrides or None)
    for query, hits in zip(args.queries, results):
        if args.json:
            print_json(args, {"query": query, "hits": [h.to_dict() for h in hits]}, indent=None)
        else:
            print(format_hits(query, hits))
    return 0


def format_hits(query: str, hits: list[Hit]) -> str:
    """A readable table of one query's hits, clipped to the terminal width; the dense and
    lexical columns appear when a hit was reranked or found by a lexical list."""
    width = shutil.get_terminal_size((120, 20)).columns
    detail = any(h.rerank_score is not None or h.lexical_score is not None for h in hits)
    lines = [f"query: {query}"]
    header = f"{'#':>3}  {'score':>7}  " + (f"{'dense':>7}  {'lexical':>7}  " if detail else "")
    lines.append(header + f"{'ad_id':<18}  text")
    for hit in hits:
        prefix = f"{hit.rank:>3}  {hit.score:>7.4f}  "
        if detail:
            prefix += f"{_cell(hit.dense_score)}  {_cell(hit.lexical_score)}  "
        prefix += f"{hit.ad_id:<18}  "
        lines.append(prefix + _clip(hit.text, max(20, width - len(prefix))))
    return "\n".join(lines) + "\n"


def _cell(score: float | None) -> str:
    return f"{'—':>7}" if score is None else f"{score:>7.4f}"


def _clip(text: str, columns: int) -> str:
    """Cut ``text`` to ``columns`` display cells (CJK characters take two)."""
    used, kept = 0, list[str]()
    for char in text.replace("\n", " "):
        cells = 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if used + cells > columns - 1:
            return "".join(kept) + "…"
        kept.append(char)
        used += cells
    return "".join(kept)


def _register_eval(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="recall@k, MRR, nDCG and MAP of an index on your own judged queries",
        description="Search every query of a queries file and score the hits against graded "
        "relevance judgements (qrels). Queries: JSON lines with '_id' (or 'query_id') and "
        "'text'. Qrels: TSV with the header query-id, corpus-id, score (or query_id, ad_id, "
        "score); the corpus ids are the index's ad ids; score >= 1 is relevant.",
    )
    from adrecall.cli_options import add_old_spelling

    parser.add_argument("index", nargs="?", default=argparse.SUPPRESS,
                        help="index directory written by `adrecall build`")
    add_old_spelling(parser, "--index", "the index as the first argument", "index")
    parser.add_argument("--queries", required=True, help="queries .jsonl")
    parser.add_argument("--qrels", required=True, help="qrels .tsv")
    parser.add_argument("--cutoffs", type=_cutoffs, default=[1, 10, 100],
                        help="metric cut-offs, comma-separated (default 1,10,100)")
    add_old_spelling(parser, "--k", "--cutoffs", "cutoffs", type=_cutoffs)
    parser.add_argument("-k", type=int, default=None,
                        help="hits retrieved per query, as in search (default: the largest "
                        "cut-off, at least 100)")
    _add_model_options(parser)
    parser.add_argument("--batch-size", type=int, default=128, help="queries per model forward pass (default 128)")
    parser.add_argument("--json", nargs="?", const=True, default=False, metavar="",
                        help="print the result as JSON to stdout (and nothing else there)")
    parser.add_argument("--json-file", metavar="FILE", default=None,
                        help="also write the result as JSON to FILE")
    parser.add_argument("--per-query", action="store_true", help="include every query's metrics in the JSON")
    parser.add_argument("--tune-lexical-weight", action="store_true",
                        help="with --mode hybrid: try lexical weights 0, 0.05, ..., 1 on these "
                        "(dev) queries, report each one's nDCG@10 and evaluate with the best")
    parser.set_defaults(func=_run_eval)


def _cutoffs(value: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in value.split(",") if k.strip()})
    except ValueError:
        ks = []
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of positive integers")
    return ks


def _run_eval(args: argparse.Namespace) -> int:
    from retrieval.evaluation import (
        choose_lexical_weight,
        evaluate_retriever,
        read_qrels,
        read_queries,
    )

    if getattr(args, "index", None) is None:
        raise ValueError("give the index directory as the first argument: adrecall eval IDX "
                         "--queries Q.jsonl --qrels QRELS.tsv")
    if isinstance(args.json, str):  # the old `--json FILE`
        print(f"adrecall eval: warning: --json FILE is deprecated and will be removed in the "
              f"next release; use --json-file {args.json}", file=sys.stderr)
        args.json_file, args.json = args.json, False
    queries = read_queries(args.queries)
    qrels = read_qrels(args.qrels)  # both read before the model loads: bad files fail fast
    if args.tune_lexical_weight and args.mode != "hybrid":
        raise ValueError("--tune-lexical-weight chooses the weight of hybrid search: add "
                         "--mode hybrid")
    retriever = _load_retriever(args)
    tuned = None
    if args.tune_lexical_weight:
        weight, by_weight = choose_lexical_weight(retriever, queries, qrels,
                                                  batch_size=args.batch_size)
        retriever.lexical_weight = weight
        tuned = {"lexical_weight": weight, "chosen_on": "ndcg@10 of these queries",
                 "ndcg@10_by_weight": {f"{w:g}": round(v, 5) for w, v in by_weight.items()}}
        print(f"lexical weight chosen on these queries: {weight:g} (nDCG@10 "
              f"{by_weight[weight]:.4f}; 0: {by_weight[0.0]:.4f}, 0.5: {by_weight[0.5]:.4f}, "
              f"1: {by_weight[1.0]:.4f})", file=sys.stderr)
    result = evaluate_retriever(retriever, queries, qrels, ks=args.cutoffs, depth=args.k,
                                batch_size=args.batch_size, mode=args.mode)
    report = {
        "index": str(args.index), "queries": str(args.queries), "qrels": str(args.qrels),
        "reranker": args.reranker,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **result.to_dict(per_query=args.per_query),
        **({"tuned": tuned} if tuned else {}),
    }
    settings = result.settings
    missing = cast("list[str]", settings["missing_relevant_doc_ids"])
    if missing:
        print(f"warning: {len(missing)} relevant doc id(s) of the qrels are not ad ids of the "
              f"index (e.g. {missing[:5]}); they count as not found", file=sys.stderr)
    if args.json:
        print_json(args, report, indent=1)
    else:
        print(
            f"index {args.index}: {settings['index_ads']:,} ads, {settings['index_type']}, model "
            f"{settings['model']}, mode {args.mode}"
            + (f" ({args.hybrid_fusion}, lexical weight {retriever.lexical_weight:g})"
               if args.mode == "hybrid" else "")
            + (f", reranked by {args.reranker}" if args.reranker else "")
        )
        print(result.table())
    if args.json_file:
        path = Path(args.json_file)
        path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0
