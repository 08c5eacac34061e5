"""``adrecall search``: query an index directory from the shell."""

from __future__ import annotations

import argparse
import json
import shutil
import unicodedata

from retrieval.retriever import Hit, Retriever


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand."""
    parser = subparsers.add_parser(
        "search",
        help="search an index with one or more queries",
        description="Print the ads whose meaning best matches each query.",
    )
    parser.add_argument("index", help="index directory written by `adrecall build`")
    parser.add_argument("queries", nargs="+", help="query text(s)")
    parser.add_argument("-k", type=int, default=10, help="hits per query (default 10)")
    parser.add_argument("--model", default=None, help="model directory (default: the one the index was built with)")
    parser.add_argument("--reranker", default=None, help="BertSim directory to rerank the candidates")
    parser.add_argument("--candidates", type=int, default=100, help="candidates reranked per query (default 100)")
    parser.add_argument("--json", action="store_true", help="print JSON lines, one per query")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    reranker = None
    if args.reranker:
        from rerank import BertSim  # the command line may join the packages; the API does not

        reranker = BertSim.load(args.reranker)
    retriever = Retriever.load(
        args.index, model=args.model, reranker=reranker, candidates=args.candidates
    )
    results = retriever.search(list(args.queries), k=args.k)
    for query, hits in zip(args.queries, results):
        if args.json:
            print(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
        else:
            print(format_hits(query, hits))
    return 0


def format_hits(query: str, hits: list[Hit]) -> str:
    """A readable table of one query's hits, clipped to the terminal width."""
    width = shutil.get_terminal_size((120, 20)).columns
    reranked = any(h.rerank_score is not None for h in hits)
    lines = [f"query: {query}"]
    header = f"{'#':>3}  {'score':>7}  " + (f"{'dense':>7}  " if reranked else "") + f"{'ad_id':<18}  text"
    lines.append(header)
    for hit in hits:
        prefix = f"{hit.rank:>3}  {hit.score:>7.4f}  " + (f"{hit.dense_score:>7.4f}  " if reranked else "")
        prefix += f"{hit.ad_id:<18}  "
        lines.append(prefix + _clip(hit.text, max(20, width - len(prefix))))
    return "\n".join(lines) + "\n"


def _clip(text: str, columns: int) -> str:
    """Cut ``text`` to ``columns`` display cells (CJK characters take two)."""
    used, kept = 0, []
    for char in text.replace("\n", " "):
        cells = 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if used + cells > columns - 1:
            return "".join(kept) + "…"
        kept.append(char)
        used += cells
    return "".join(kept)
