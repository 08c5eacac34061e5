"""Dense, lexical and hybrid search, each as a user gets it: ``build --lexical`` and
``Retriever.search(mode=...)``, the lexical weight chosen on dev queries only.

For each data set an index with its lexical side is built from the corpus (in ``--work-dir``)
and the queries are split: QBQTC v1 pooled tunes on its 69 dev queries and reports its 91
test_public ones; Cranfield and the sample catalogue (no dev split of their own) tune on the
queries of odd position and report the even ones. Rows on the report queries: dense alone,
lexical alone, hybrid RRF at the default weight 0.5, and hybrid RRF and weighted fusion at the
weight chosen on the tuning queries (nDCG@10). QBQTC runs once with the default MiniLM as the
dense side and, with ``--qbqtc-model DIR`` (extend-vocab + train-encoder on QBQTC train, as
``benchmarks.rerank_pipeline`` makes it), once with a Chinese-capable one.

``--cost`` adds the price of the lexical side at ``--cost-ads`` ads (real texts of the shared
data sets, deduplicated): dense build time, lexical index time and disk beside the dense
index's, and per-query latency p50/p99 of each mode (single queries, after a warm-up).

Results: ``benchmarks/results/hybrid_search.{json,md}``.

    python -m benchmarks.hybrid_search --threads 2 --qbqtc-model /tmp/adrecall-rerank-pipeline/encoder --cost
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.datasets import DatasetMissing, EvalDataset, datasets_root, load_eval_dataset
from index_build.build_job import build_index
from retrieval.evaluation import choose_lexical_weight, evaluate_retriever
from retrieval.lexical_index import LEXICAL_FILES, LexicalIndex
from retrieval.retriever import Retriever

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DATASETS = ("sample-catalogue", "cranfield", "qbqtc-v1-pooled")


def split_queries(dataset: EvalDataset) -> tuple[dict[str, str], dict[str, str]]:
    """(tuning queries, report queries), both judged."""
    judged = {q: t for q, t in dataset.queries.items() if dataset.qrels.get(q)}
    if dataset.name == "qbqtc-v1-pooled":
        test = set(load_eval_dataset("qbqtc-v1-pooled-test").queries)
        return ({q: t for q, t in judged.items() if q not in test},
                {q: t for q, t in judged.items() if q in test})
    ids = list(judged)
    return {q: judged[q] for q in ids[0::2]}, {q: judged[q] for q in ids[1::2]}


def build(dataset: EvalDataset, model: str, work: Path) -> Path:
    """An index of the corpus with its lexical side (reused when it is already there)."""
    out = work / f"{dataset.name}-{Path(model).name}"
    if (out / "manifest.json").is_file() and (out / LEXICAL_FILES[0]).is_file():
        return out
    table = work / f"{dataset.name}.csv"
    ids, texts = dataset.doc_ids(), dataset.doc_texts()
    keep = [i for i, t in enumerate(texts) if t.strip()]
    pd.DataFrame({"ad_id": [ids[i] for i in keep], "text": [texts[i] for i in keep]}).to_csv(
        table, index=False)
    build_index(table, out, model=None if model == "default" else model, lexical=True,
                progress=False)
    return out


def quality(dataset: EvalDataset, index: Path) -> dict:
    """Every mode on the report queries, the weights chosen on the tuning queries."""
    tune, report = split_queries(dataset)
    tune_qrels = {q: dataset.qrels[q] for q in tune}
    qrels = {q: dataset.qrels[q] for q in report}
    rows: dict[str, dict] = {}
    retriever = Retriever.load(index)
    for mode in ("dense", "lexical"):
        rows[mode] = evaluate_retriever(retriever, report, qrels, ks=[10, 100], mode=mode).metrics
    chosen = {}
    for fusion in ("rrf", "weighted"):
        tuned = Retriever.load(index, hybrid_fusion=fusion)
        weight, by_weight = choose_lexical_weight(tuned, tune, tune_qrels)
        chosen[fusion] = {"weight": weight, "tune_ndcg@10": round(by_weight[weight], 4)}
        if fusion == "rrf":
            rows["hybrid rrf, w 0.5"] = evaluate_retriever(
                tuned, report, qrels, ks=[10, 100], mode="hybrid").metrics
        tuned.lexical_weight = weight
        rows[f"hybrid {fusion}, w {weight:g} (tuned)"] = evaluate_retriever(
            tuned, report, qrels, ks=[10, 100], mode="hybrid").metrics
    return {"tune_queries": len(tune), "report_queries": len(report), "chosen": chosen,
            "rows": {k: {m: round(float(v), 4) for m, v in r.items()} for k, r in rows.items()}}


def cost_texts(n: int) -> list[str]:
    """Up to ``n`` unique real texts: QBQTC titles and queries, Cranfield, Chinese pairs."""
    texts: list[str] = []
    for name in ("qbqtc-v1-pooled", "cranfield"):
        try:
            data = load_eval_dataset(name)
        except DatasetMissing:
            continue
        texts += data.doc_texts() + list(data.queries.values())
    root = datasets_root()
    for path in [root / "qbqtc/final/dev.json", root / "qbqtc/v1/train.json"]:
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    texts += [str(row.get("query", "")), str(row.get("title", ""))]
    for path in sorted((root / "zh_sentpairs").rglob("*")):
        if len(dict.fromkeys(texts)) >= n:
            break
        if path.is_file() and path.suffix in (".csv", ".tsv", ".txt", ".jsonl", ".json"):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                texts += [p for p in line.split("\t")[:2] if len(p) > 3]
    unique = [t.strip() for t in dict.fromkeys(texts) if t and t.strip()]
    return unique[:n]


def cost(n: int, work: Path, repeats: int) -> dict:
    """Build and query cost of the lexical side at ``n`` ads, as ratios to dense."""
    texts = cost_texts(n)
    table = work / f"cost-{len(texts)}.csv"
    pd.DataFrame({"ad_id": [f"d{i}" for i in range(len(texts))], "text": texts}).to_csv(
        table, index=False)
    out = work / f"cost-{len(texts)}"
    started = time.perf_counter()
    build_index(table, out, progress=False)
    dense_build = time.perf_counter() - started
    started = time.perf_counter()
    lexical = LexicalIndex.build(texts)
    lexical.save(work / "cost-lexical")
    lexical_build = time.perf_counter() - started
    lexical_bytes = sum((work / "cost-lexical" / name).stat().st_size for name in LEXICAL_FILES)
    dense_bytes = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    # query latency: the dense index with the lexical index just timed beside it (what
    # build --lexical would write, without encoding the 100k ads a second time)
    dense = Retriever.load(out)
    retriever = Retriever(dense.index, dense.ads, dense.manifest, dense.encoder,
                          lexical=lexical, source=out)
    queries = texts[::max(1, len(texts) // repeats)][:repeats]
    latency = {}
    for mode in ("dense", "lexical", "hybrid"):
        retriever.search(queries[0], k=10, mode=mode)  # warm-up
        times = []
        for query in queries:
            start = time.perf_counter()
            retriever.search(query, k=10, mode=mode)
            times.append(1000 * (time.perf_counter() - start))
        latency[mode] = {"p50_ms": round(float(np.percentile(times, 50)), 2),
                         "p99_ms": round(float(np.percentile(times, 99)), 2)}
    return {
        "ads": len(texts), "queries": len(queries),
        "dense_build_s": round(dense_build, 1), "lexical_build_s": round(lexical_build, 1),
        "lexical_build_ratio": round(lexical_build / dense_build, 3),
        "dense_bytes": dense_bytes, "lexical_bytes": lexical_bytes,
        "lexical_disk_ratio": round(lexical_bytes / dense_bytes, 3),
        "latency": latency, "language": lexical.language,
    }


def markdown(report: dict) -> str:
    lines = ["# Dense, lexical and hybrid search", "",
             f"- command: `{report['command']}`; date {report['date']}",
             ("- Each row searches the report queries through `Retriever.search(mode=...)` on an "
             "index built with `build_index(..., lexical=True)`; tuned weights are chosen on the "
             "tuning queries only (QBQTC: v1 dev; others: odd-position queries), by nDCG@10."), ""]
    for name, entry in report["quality"].items():
        lines += [(f"## {name} ({entry['report_queries']} report queries, "
                  f"{entry['tune_queries']} tuning)"), "",
                  "| system | nDCG@10 | recall@10 | recall@100 | MRR@10 |", "|---|---:|---:|---:|---:|"]
        for row, m in entry["rows"].items():
            lines.append(f"| {row} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
                         f"{m['recall@100']:.4f} | {m['mrr@10']:.4f} |")
        lines.append("")
    if report.get("cost"):
        c = report["cost"]
        lines += [(f"## Cost at {c['ads']:,} ads ({c['language']} tokens, {c['queries']} single "
                  "queries after a warm-up)"), "",
                  (f"- dense build {c['dense_build_s']} s; lexical index {c['lexical_build_s']} s "
                  f"(**{c['lexical_build_ratio']:.2f}×** the dense build); lexical files "
                  f"{c['lexical_bytes'] / 1e6:.1f} MB against {c['dense_bytes'] / 1e6:.1f} MB "
                  f"(**{c['lexical_disk_ratio']:.2f}×**)"), "",
                  "| mode | p50 ms | p99 ms | p50 / dense p50 |", "|---|---:|---:|---:|"]
        base = c["latency"]["dense"]["p50_ms"]
        for mode, t in c["latency"].items():
            lines.append(f"| {mode} | {t['p50_ms']} | {t['p99_ms']} | {t['p50_ms'] / base:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--qbqtc-model", help="a Chinese-capable bi-encoder for a second QBQTC run")
    parser.add_argument("--cost", action="store_true", help="also measure the lexical side's cost")
    parser.add_argument("--cost-ads", type=int, default=100_000)
    parser.add_argument("--cost-queries", type=int, default=200)
    parser.add_argument("--work-dir", default="/tmp/adrecall-hybrid")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"command": "python -m benchmarks.hybrid_search " + " ".join(argv or sys.argv[1:]),
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quality": {}}
    results = Path(args.results_dir)
    for name in args.datasets:
        try:
            dataset = load_eval_dataset(name)
        except DatasetMissing as exc:
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        models = ["default"] + ([args.qbqtc_model] if name.startswith("qbqtc") and args.qbqtc_model
                                else [])
        for model in models:
            label = name if model == "default" else f"{name}, dense = {Path(model).name} " \
                "(extend-vocab + train-encoder on QBQTC train)"
            report["quality"][label] = quality(dataset, build(dataset, model, work))
            print(label, json.dumps(report["quality"][label]["rows"]), flush=True)
    if args.cost:
        report["cost"] = cost(args.cost_ads, work, args.cost_queries)
    results.mkdir(parents=True, exist_ok=True)
    (results / "hybrid_search.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / "hybrid_search.md").write_text(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
