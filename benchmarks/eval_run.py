"""Run retrieval systems on evaluation sets and write results as JSON, Markdown and a PNG plot.

    python -m benchmarks.eval_run --datasets cranfield qbqtc-v1-pooled \
        --systems bm25 use dense-flat dense-hnsw dense-ivf rrf:bm25+dense-flat --merge

For each data set this writes ``benchmarks/results/<dataset>.json`` (every metric, the
recall@k curve for k = 1..100, timings, and the stamps: exact command, models, date, git
commit), ``<dataset>.md`` (the same as a table) and ``<dataset>.png`` (recall@k per system).
Metric conventions are those of ``retrieval.metrics`` (trec_eval's).

Adding a system: write a builder ``(dataset, depth) -> System`` whose ``search`` maps
``{query_id: text}`` to a run ``{query_id: [(doc_id, score), ...]}`` of at most ``depth``
results per query, and register it with ``register_system("name", builder)`` (or pass
``System`` objects to ``run_benchmark`` directly). ``rrf:a+b`` fuses any registered systems.
A builder that cannot make its system in this run raises ``SystemUnavailable``; the system
(and any fusion that needs it) is skipped with that message. ``--merge`` keeps the systems
already in a results file that this run does not redo.

Systems: ``bm25``, ``use`` (the product's ``retrieval.lexical_index``, use_peer.py); ``dense-flat``, ``dense-hnsw``,
``dense-ivf`` and ``dense-flat+rerank`` (benchmarks/dense_systems.py: our bi-encoder over each
FAISS index type, indexes cached under $ADRECALL_CACHE/eval/indexes; ``--model DIR`` picks
the bi-encoder, ``--reranker DIR`` the BertSim model the rerank system needs).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.datasets import EVAL_DATASETS, EvalDataset, load_eval_dataset
from retrieval.fusion import DEFAULT_RRF_C, reciprocal_rank_fusion
from retrieval.metrics import (
    DEFAULT_KS,
    MAP_CUTOFF,
    MRR_CUTOFF,
    NDCG_CUTOFF,
    evaluate,
    recall_curve,
)

RunResults = dict[str, list[tuple[str, float]]]
SearchFn = Callable[[dict[str, str]], RunResults]
"""``{query_id: query_text} -> {query_id: [(doc_id, score), ...]}``, best first."""

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_SYSTEMS = ["bm25", "use", "dense-flat", "dense-hnsw", "dense-ivf", "rrf:bm25+dense-flat"]
CURVE_MAX_K = 100
METRIC_CONVENTIONS = (
    "trec_eval conventions (retrieval/metrics.py): ties by score desc then doc id desc; "
    "relevant = gain >= 1; nDCG with linear gains; MRR cut at 10; MAP@100 divides by all "
    "relevant docs; queries without a relevant doc excluded and counted"
)


@dataclass
class System:
    """A retrieval system ready to search one data set's corpus."""

    name: str
    model: str
    search: SearchFn
    build_s: float = 0.0


SystemBuilder = Callable[[EvalDataset, int], System]
SYSTEMS: dict[str, SystemBuilder] = {}


class SystemUnavailable(RuntimeError):
    """A builder cannot make its system in this run (say, a model was not given)."""


def register_system(key: str, builder: SystemBuilder) -> None:
    """Make ``builder`` available as ``--systems key`` (a ``+`` inside a name is allowed:
    ``rrf:`` specs match the longest registered names first)."""
    if not key or ":" in key or key.startswith("+") or key.endswith("+") or "++" in key:
        raise ValueError(f"system name {key!r} must be non-empty, without ':' or a loose '+'")
    SYSTEMS[key] = builder


def _run_from_positions(
    qids: Sequence[str], hits: Sequence[Sequence[tuple[int, float]]], doc_ids: Sequence[str]
) -> RunResults:
    return {q: [(doc_ids[p], s) for p, s in h] for q, h in zip(qids, hits)}


def build_bm25(dataset: EvalDataset, depth: int) -> System:
    """BM25 (bm25s, jieba for Chinese) over the data set's doc texts."""
    from retrieval.lexical_index import LexicalIndex

    start = time.perf_counter()
    index = LexicalIndex.build(dataset.doc_texts(), language="auto")
    doc_ids = dataset.doc_ids()

    def search(queries: dict[str, str]) -> RunResults:
        qids = list(queries)
        return _run_from_positions(qids, index.search([queries[q] for q in qids], depth), doc_ids)

    return System("BM25", index.describe(), search, time.perf_counter() - start)


def build_use(dataset: EvalDataset, depth: int) -> System:
    """USE multilingual v3, exact inner-product search over every doc."""
    from benchmarks.use_peer import USEEncoder, exact_search

    start = time.perf_counter()
    encoder = USEEncoder(threads=1)
    doc_vectors = encoder.encode(dataset.doc_texts())
    doc_ids = dataset.doc_ids()

    def search(queries: dict[str, str]) -> RunResults:
        qids = list(queries)
        vectors = encoder.encode([queries[q] for q in qids])
        return _run_from_positions(qids, exact_search(vectors, doc_vectors, depth), doc_ids)

    model = f"{encoder.describe()}; exact inner-product search"
    return System("USE-multilingual-v3", model, search, time.perf_counter() - start)


def rrf_system(parts: Sequence[System], depth: int, c: float = DEFAULT_RRF_C) -> System:
    """Reciprocal rank fusion of ``parts`` (each searched to ``depth``), cut at ``depth``."""

    def search(queries: dict[str, str]) -> RunResults:
        runs = [part.search(queries) for part in parts]
        return reciprocal_rank_fusion(runs, c=c, top_n=depth)

    return System(
        "RRF(" + " + ".join(p.name for p in parts) + ")",
        f"reciprocal rank fusion, c={c}, of: " + " | ".join(p.model for p in parts),
        search,
        sum(p.build_s for p in parts),
    )


register_system("bm25", build_bm25)
register_system("use", build_use)


def _rrf_parts(body: str) -> list[str]:
    """Split ``a+b+c`` into system names, longest registered name first at each step."""
    tokens = [t for t in body.split("+") if t]
    parts, i = [], 0
    while i < len(tokens):
        j = next((j for j in range(len(tokens), i, -1) if "+".join(tokens[i:j]) in SYSTEMS), i + 1)
        parts.append("+".join(tokens[i:j]))
        i = j
    return parts


def build_systems(specs: Sequence[str], dataset: EvalDataset, depth: int) -> list[System]:
    """Build systems named like ``bm25``, ``use`` or ``rrf:bm25+use`` (parts built once).

    A system whose builder raises ``SystemUnavailable`` is left out, with the reason on
    stderr, and so is every fusion that needs it.
    """
    import benchmarks.dense_systems  # noqa: F401  (registers the dense systems, defaults)

    built: dict[str, System | None] = {}

    def get(key: str) -> System | None:
        if key not in SYSTEMS:
            raise ValueError(f"unknown system {key!r}; choose from {sorted(SYSTEMS)} or rrf:a+b")
        if key not in built:
            try:
                built[key] = SYSTEMS[key](dataset, depth)
            except SystemUnavailable as exc:
                print(f"{dataset.name}: skipping {key}: {exc}", file=sys.stderr)
                built[key] = None
        return built[key]

    systems = []
    for spec in specs:
        if spec.startswith("rrf:"):
            parts = _rrf_parts(spec[4:])
            if len(parts) < 2:
                raise ValueError(f"{spec!r}: rrf needs two or more systems, e.g. rrf:bm25+use")
            found = [s for s in (get(p) for p in parts) if s is not None]
            if len(found) == len(parts):
                systems.append(rrf_system(found, depth))
        elif (system := get(spec)) is not None:
            systems.append(system)
    return systems


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            check=False,
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def stamp(command: str) -> dict[str, str]:
    """Who made a result: the exact command, date (UTC), git revision and machine."""
    return {
        "command": command,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": _git_revision(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
        f"python {platform.python_version()}",
    }


def run_benchmark(
    dataset: EvalDataset,
    systems: Sequence[System],
    command: str,
    ks: Sequence[int] = DEFAULT_KS,
    primary_metric: str | None = None,
) -> dict[str, object]:
    """Search every query with every system and score the runs; returns the report dict.

    The primary metric defaults to recall at the largest cut-off in ``ks``.
    """
    primary_metric = primary_metric or f"recall@{max(ks)}"
    entries = []
    for system in systems:
        start = time.perf_counter()
        run = system.search(dict(dataset.queries))
        search_s = time.perf_counter() - start
        result = evaluate(run, dataset.qrels, ks=ks, primary_metric=primary_metric)
        curve = recall_curve(run, dataset.qrels, max_k=CURVE_MAX_K)
        entries.append(
            {
                "name": system.name,
                "model": system.model,
                **result.to_dict(),
                "recall_curve": [round(float(v), 6) for v in curve],
                "build_s": round(system.build_s, 3),
                "search_s": round(search_s, 3),
                "ms_per_query": round(1000 * search_s / max(len(dataset.queries), 1), 3),
                **stamp(command),
            }
        )
        print(f"{dataset.name}: {system.name}: {result.primary_metric} = {result.primary:.4f}",
              file=sys.stderr)
    return {
        "dataset": dataset.name,
        "dataset_stats": dataset.stats(),
        "dataset_info": {k: v for k, v in dataset.info.items() if k != "sources"},
        "metric_conventions": METRIC_CONVENTIONS,
        "ks": sorted(set(ks)),
        **stamp(command),
        "systems": entries,
    }


def merge_reports(old: dict[str, object], new: dict[str, object]) -> dict[str, object]:
    """``new`` with the systems of ``old`` that ``new`` does not hold appended after its own."""
    if old.get("dataset") != new.get("dataset"):
        raise ValueError(f"cannot merge results of {old.get('dataset')!r} into {new['dataset']!r}")
    names = {s["name"] for s in new["systems"]}
    kept = [s for s in old.get("systems", []) if s["name"] not in names]
    return {**new, "systems": list(new["systems"]) + kept}


def markdown(report: dict[str, object]) -> str:
    """The report as a Markdown page: stamps, then one table row per system."""
    ks = report["ks"]
    metrics = [f"recall@{k}" for k in ks] + [
        f"mrr@{MRR_CUTOFF}",
        f"ndcg@{NDCG_CUTOFF}",
        f"map@{MAP_CUTOFF}",
    ]
    stats = report["dataset_stats"]
    lines = [
        f"# Retrieval benchmark: {report['dataset']}",
        "",
        f"- command: `{report['command']}`",
        f"- date: {report['date']}; git: {report['git']}; machine: {report['machine']}",
        f"- corpus {stats['n_docs']:,} docs; {stats['n_queries']:,} queries",
        f"- metrics: {report['metric_conventions']}",
        "",
        "| system | " + " | ".join(metrics) + " | queries (excluded) | build s | ms/query |",
        "|---|" + "---:|" * (len(metrics) + 3),
    ]
    for s in report["systems"]:
        values = " | ".join(f"{s['metrics'][m]:.4f}" for m in metrics)
        lines.append(
            f"| {s['name']} | {values} | {s['n_queries']} ({s['n_excluded']}) | "
            f"{s['build_s']:.1f} | {s['ms_per_query']:.2f} |"
        )
    lines += ["", "Models:", ""]
    lines += [f"- **{s['name']}**: {s['model']} ({s['date']}, `{s['command']}`)"
              for s in report["systems"]]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, object], path: Path) -> None:
    """PNG of recall@k (k = 1..100) per system, stamped with command and date."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2))
    for s in report["systems"]:
        curve = s["recall_curve"]
        ax.plot(range(1, len(curve) + 1), curve, label=f"{s['name']} (R@100 {curve[-1]:.3f})")
    ax.set_xscale("log")
    ax.set_xlim(1, CURVE_MAX_K)
    ax.set_ylim(0, 1)
    ax.set_xlabel("k")
    ax.set_ylabel("mean recall@k")
    ax.set_title(f"{report['dataset']}: recall@k")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    command = textwrap.fill(str(report["command"]), 150, subsequent_indent="    ",
                            break_on_hyphens=False)
    fig.text(0.01, 0.01, f"{command}\n{report['date']}  git {report['git']}",
             fontsize=6, family="monospace", va="bottom")
    fig.subplots_adjust(bottom=0.2)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict[str, object], out_dir: Path, merge: bool = False) -> list[Path]:
    """Write ``<dataset>.json``, ``.md`` and ``.png`` into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / str(report["dataset"])
    json_path = base.with_suffix(".json")
    if merge and json_path.is_file():
        report = merge_reports(json.loads(json_path.read_text(encoding="utf-8")), report)
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    md_path = base.with_suffix(".md")
    md_path.write_text(markdown(report), encoding="utf-8")
    png_path = base.with_suffix(".png")
    plot(report, png_path)
    return [json_path, md_path, png_path]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["cranfield", "qbqtc-v1-pooled"],
                        help=f"evaluation sets: {', '.join(EVAL_DATASETS)}")
    parser.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS,
                        help=f"default: {' '.join(DEFAULT_SYSTEMS)}")
    parser.add_argument("--model", default=None,
                        help="bi-encoder directory for the dense systems (default: embedded MiniLM)")
    parser.add_argument("--reranker", default=None,
                        help="BertSim directory; dense-flat+rerank is skipped without it")
    parser.add_argument("--rerank-candidates", type=int, default=CURVE_MAX_K,
                        help="dense hits the reranker reorders (default 100, at least --depth)")
    parser.add_argument("--k", default=",".join(map(str, DEFAULT_KS)),
                        help="recall cut-offs, comma-separated (default 1,10,100)")
    parser.add_argument("--depth", type=int, default=CURVE_MAX_K,
                        help="results per query each system returns (default 100)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--merge", action="store_true",
                        help="keep systems already in the results files that this run does not redo")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.k.split(",") if k.strip()]
    if args.depth < max(ks + [CURVE_MAX_K]):
        parser.error(f"--depth {args.depth} is below the largest cut-off {max(ks + [CURVE_MAX_K])}")
    command = "python -m benchmarks.eval_run " + shlex.join(
        list(argv) if argv is not None else sys.argv[1:]
    )
    from benchmarks.dense_systems import DenseOptions, register_dense_systems

    register_dense_systems(DenseOptions(args.model, args.reranker, args.rerank_candidates))
    for name in args.datasets:
        dataset = load_eval_dataset(name)
        systems = build_systems(args.systems, dataset, args.depth)
        if not systems:
            print(f"{name}: no system could be built; nothing written", file=sys.stderr)
            continue
        report = run_benchmark(dataset, systems, command, ks=ks)
        for path in write_report(report, args.out, merge=args.merge):
            print(path)
    return 0


if __name__ == "__main__":
    # Run the imported module's main, so that this run and benchmarks.dense_systems share one
    # registry (under ``python -m`` this file is also loaded as ``__main__``, a second copy).
    from benchmarks.eval_run import main as _main

    sys.exit(_main())
