"""Inference speed by back-end, each against plain sentence-transformers fp32 in the same run.

For every back-end this machine has (``torch`` fp32, ``torch-bf16``, ``openvino``, ``onnx``) and
for a dynamic-int8 candidate (onnxruntime ``quantize_dynamic``, per-channel; measured, offered
only if it keeps quality):

* encode texts/s and tokens/s on real texts of three lengths and on short queries: QBQTC
  titles (short, Chinese), the sample catalogue's ads (medium), Cranfield abstracts (long),
  Cranfield and sample-catalogue queries; the median of ``--repeats`` runs, as a ratio to
  ``SentenceTransformer.encode`` fp32 on the same texts, run in the same rounds (every
  system once per round, ratios taken per round: the machine's load drifts);
* mean and minimum cosine of its vectors to fp32;
* recall@10 of a flat index of the Cranfield corpus built with it, against the fp32 index
  (each side encodes the 225 queries itself), and nDCG@10 on Cranfield's qrels;
* BertSim (``--reranker``) ms to rerank 20 and 100 candidates, and Spearman to fp32 scores;
* ``Retriever.search`` p50/p99 for single queries end to end: encode, HNSW search, rerank 100;
* ``build_index`` ads/s on the sample catalogue against ``encode`` + FAISS ``add`` (both given a
  loaded model).

Results: ``benchmarks/results/speed.{json,md,png}``.

    python -m benchmarks.speed --threads 2 --reranker /tmp/adrecall-rerank-sweep/stsb/lr5e-05-cls
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from adrecall.backends import missing_reason
from benchmarks.datasets import load_eval_dataset
from index_build.build_job import build_index
from retrieval.encoder import Encoder
from retrieval.metrics import evaluate

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BACKENDS = ("torch", "torch-bf16", "openvino", "onnx")
INT8 = "onnx-int8 (dynamic, per-channel)"
BASELINE = "sentence-transformers fp32"
PLAIN_BUILD = "sentence-transformers + FAISS add"


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each call in ``fns``, ``rounds`` times, the calls of a round back to back
    (after one warm-up round). On a shared machine the load drifts; interleaving puts every
    system under the same load in each round, so per-round ratios stay meaningful."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(rounds + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def ratio(base: list[float], times: list[float]) -> float:
    """Median over rounds of base seconds ÷ system seconds."""
    return round(statistics.median(b / t for b, t in zip(base, times)), 2)


def unique(texts: list[str]) -> list[str]:
    """``texts`` without repeats or blank ones, in order."""
    return [t for t in dict.fromkeys(texts) if t.strip()]


def text_sets(n: int, long_n: int) -> dict[str, list[str]]:
    """The timed texts: real, deduplicated, each set ``n`` (long: ``long_n``) texts."""
    cran, sample = load_eval_dataset("cranfield"), load_eval_dataset("sample-catalogue")
    qbqtc = load_eval_dataset("qbqtc-v1-pooled")
    return {
        "queries": unique([*cran.queries.values(), *sample.queries.values()])[:n],
        "short (QBQTC titles)": unique(qbqtc.doc_texts())[:n],
        "medium (sample ads)": unique(sample.doc_texts())[:n],
        "long (Cranfield abstracts)": unique(cran.doc_texts())[:long_n],
    }


def int8_encoder(threads: int | None) -> Encoder:
    """An ``onnx`` encoder whose session runs a dynamically quantised (int8) copy of the export."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    encoder = Encoder(backend="onnx", threads=threads)
    source = Path(encoder._runner._compiled._model_path)
    target = source.with_name("model-int8.onnx")
    if not target.is_file():
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8)
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    encoder._runner._compiled = onnxruntime.InferenceSession(
        str(target), options, providers=["CPUExecutionProvider"])
    return encoder


def encode_speed(encoders: dict[str, Encoder], measured: Sequence[str],
                 sets: dict[str, list[str]], repeats: int) -> dict[str, Any]:
    """Texts/s and tokens/s per set of the ``measured`` systems and the baseline, with cosine
    to fp32 (``encoders["torch"]``)."""
    st = encoders["torch"]._model
    out: dict[str, Any] = {}
    for name, texts in sets.items():
        prepared = encoders["torch"].prepare(texts)
        reference = encoders["torch"].encode_batch(texts)
        fns: dict[str, Callable[[], Any]] = {BASELINE: lambda p=prepared: st.encode(
            p, batch_size=128, normalize_embeddings=True)}
        fns.update({system: lambda e=encoders[system], t=texts: e.encode_batch(t)
                    for system in measured})
        times = interleaved(fns, repeats)
        row: dict[str, Any] = {"texts": len(texts), "tokens": reference.tokens}
        for system, seconds in times.items():
            median = statistics.median(seconds)
            row[system] = {"texts_per_s": round(len(texts) / median, 1),
                           "tokens_per_s": round(reference.tokens / median)}
            if system != BASELINE:
                cos = np.sum(encoders[system].encode_batch(texts).vectors * reference.vectors, axis=1)
                row[system].update(ratio=ratio(times[BASELINE], seconds),
                                   mean_cosine=round(float(cos.mean()), 6),
                                   min_cosine=round(float(cos.min()), 6))
            print(f"  {name:28} {system:34} {row[system]}", file=sys.stderr)
        out[name] = row
    return out


def recall_against_fp32(encoders: dict[str, Encoder], measured: Sequence[str]) -> dict[str, Any]:
    """Recall@10 of each system's Cranfield flat index against the fp32 one, and nDCG@10."""
    cran = load_eval_dataset("cranfield")
    ids, docs = zip(*[(i, t) for i, t in zip(cran.doc_ids(), cran.doc_texts()) if t.strip()])
    qids = [q for q in cran.queries if cran.qrels.get(q)]
    queries = [cran.queries[q] for q in qids]
    tops: dict[str, np.ndarray] = {}
    out: dict[str, Any] = {}
    for system in ["torch", *(m for m in measured if m != "torch")]:
        encoder = encoders[system]
        index = faiss.IndexFlatIP(encoder.dimension)
        index.add(encoder.encode(list(docs)))
        scores, rows = index.search(encoder.encode(queries), 10)
        tops[system] = rows
        run = {q: {ids[r]: float(s) for r, s in zip(rr, ss)} for q, rr, ss in zip(qids, rows, scores)}
        ndcg = evaluate(run, {q: cran.qrels[q] for q in qids}, ks=(10,)).metrics["ndcg@10"]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, tops["torch"])])
        out[system] = {"recall@10_vs_fp32": round(float(recall), 4), "ndcg@10": round(ndcg, 4)}
        print(f"  recall {system:34} {out[system]}", file=sys.stderr)
    return {m: out[m] for m in measured}


def rerank_speed(reranker: str, backends: Sequence[str], queries: list[str], ads: list[str],
                 threads: int | None) -> dict[str, Any]:
    """BertSim ms for 20 and 100 candidates (median over queries, back-ends interleaved per
    query) and Spearman of the 100-candidate scores to fp32, for the last of ``backends``
    (the first is ``torch``, the reference)."""
    from rerank import BertSim

    models = {b: BertSim.load(reranker, backend=b, threads=threads) for b in backends}
    out: dict[str, Any] = {b: {} for b in backends}
    for depth in (20, 100):
        times: dict[str, list[float]] = {b: [] for b in backends}
        scores: dict[str, list[np.ndarray]] = {b: [] for b in backends}
        for i, query in enumerate([queries[0], *queries]):  # the first is a warm-up
            texts = ads[i * depth % len(ads):][:depth]
            for backend, model in models.items():
                start = time.perf_counter()
                result = model.score(query, texts)
                if i:
                    times[backend].append(1000 * (time.perf_counter() - start))
                    scores[backend].append(result)
        reference = np.concatenate(scores["torch"])
        for backend in backends:
            out[backend][f"top{depth}_ms"] = round(statistics.median(times[backend]), 1)
            out[backend][f"top{depth}_ratio"] = ratio(times["torch"], times[backend])
            if depth == 100:
                flat = np.concatenate(scores[backend])
                out[backend]["spearman_vs_fp32"] = round(float(spearmanr(flat, reference)[0]), 5)
                out[backend]["max_abs_diff"] = round(float(np.abs(flat - reference).max()), 4)
    for backend in backends:
        print(f"  rerank {backend:34} {out[backend]}", file=sys.stderr)
    return {backends[-1]: out[backends[-1]]}


def end_to_end(index: Path, reranker: str, backends: Sequence[str], queries: list[str],
               threads: int | None) -> dict[str, Any]:
    """Single-query ``Retriever.search`` (encode, HNSW, rerank 100) p50/p99 per back-end,
    back-ends interleaved per query."""
    from rerank import BertSim
    from retrieval.retriever import Retriever

    retrievers = {b: Retriever.load(index, backend=b, threads=threads, candidates=100,
                                    reranker=BertSim.load(reranker, backend=b, threads=threads))
                  for b in backends}
    times = interleaved({f"{b}|{i}": lambda r=r, q=q: r.search(q, k=10)
                         for i, q in enumerate(queries) for b, r in retrievers.items()}, 1)
    out = {}
    for backend in backends:
        ms = [1000 * t for key, (t,) in times.items() if key.startswith(f"{backend}|")]
        out[backend] = {"p50_ms": round(float(np.percentile(ms, 50)), 1),
                        "p99_ms": round(float(np.percentile(ms, 99)), 1)}
        print(f"  search {backend:34} {out[backend]}", file=sys.stderr)
    return out


def build_speed(encoders: dict[str, Encoder], measured: Sequence[str], ads: pd.DataFrame,
                work: Path, repeats: int) -> dict[str, Any]:
    """``build_index`` ads/s per back-end against plain encode + FAISS add of the same texts."""
    table = work / "build-ads.csv"
    ads.to_csv(table, index=False)
    st = encoders["torch"]._model
    texts = encoders["torch"].prepare(ads["text"].tolist())

    def plain() -> None:
        index = faiss.IndexFlatIP(st.get_embedding_dimension())
        index.add(st.encode(texts, batch_size=128, normalize_embeddings=True))

    fns: dict[str, Callable[[], Any]] = {PLAIN_BUILD: plain}
    fns.update({system: lambda e=encoders[system]: build_index(
        table, work / "build-idx", model=e, progress=False) for system in measured})
    times = interleaved(fns, repeats)
    out: dict[str, Any] = {"ads": len(ads)}
    for system, seconds in times.items():
        out[system] = {"ads_per_s": round(len(ads) / statistics.median(seconds), 1)}
        if system != PLAIN_BUILD:
            out[system]["ratio"] = ratio(times[PLAIN_BUILD], seconds)
        print(f"  build {system:34} {out[system]}", file=sys.stderr)
    return out


def markdown(report: dict) -> str:
    systems = [s for s in report["encode"]["queries"] if isinstance(report["encode"]["queries"][s], dict)
               and "ratio" in report["encode"]["queries"][s]]
    lines = ["# Inference speed by back-end", "",
             (f"- command: `{report['command']}`; date {report['date']}; {report['threads']} "
              f"threads; {report['repeats']} rounds after a warm-up round, every system once per "
              "round; throughput is the median, the ratio the median of per-round ratios against "
              "`SentenceTransformer.encode` fp32 (batch 128) on the same texts (encode, build) "
              "or PyTorch fp32 (rerank), each system in its own process with its own baseline "
              "(the ST fp32 column is the torch process's)."),
             f"- reranker: `{report['reranker']}`", "",
             "## Encode (texts/s, ratio to sentence-transformers fp32, mean / min cosine to fp32)",
             "", "| set | texts | tokens | ST fp32 | " + " | ".join(systems) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(systems)]
    for name, row in report["encode"].items():
        cells = [f"{row[s]['texts_per_s']:.0f} (**{row[s]['ratio']:.2f}×**; "
                 f"{row[s]['mean_cosine']:.5f} / {row[s]['min_cosine']:.5f})" for s in systems]
        lines.append(f"| {name} | {row['texts']} | {row['tokens']} | "
                     f"{row[BASELINE]['texts_per_s']:.0f} | " + " | ".join(cells) + " |")
    lines += ["", "Tokens/s (real tokens, padding not counted):", "",
              "| set | ST fp32 | " + " | ".join(systems) + " |", "|---|---:|" + "---:|" * len(systems)]
    for name, row in report["encode"].items():
        lines.append(f"| {name} | {row[BASELINE]['tokens_per_s']:,} | "
                     + " | ".join(f"{row[s]['tokens_per_s']:,}" for s in systems) + " |")
    lines += ["", "## Retrieval quality (Cranfield, 1,400 abstracts, 225 queries, flat index)", "",
              "| system | recall@10 vs fp32 index | nDCG@10 |", "|---|---:|---:|"]
    for system, row in report["recall"].items():
        lines.append(f"| {system} | {row['recall@10_vs_fp32']:.4f} | {row['ndcg@10']:.4f} |")
    if report.get("rerank"):
        lines += ["", "## BertSim rerank (median ms per query) and end-to-end search", "",
                  ("| back-end | 20 candidates ms | 100 candidates ms (ratio to fp32) | Spearman "
                   "to fp32 | max abs diff | search p50 ms | search p99 ms |"),
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for backend, row in report["rerank"].items():
            e2e = report["end_to_end"].get(backend, {})
            lines.append(f"| {backend} | {row['top20_ms']} | {row['top100_ms']} "
                         f"({row['top100_ratio']:.2f}×) | "
                         f"{row['spearman_vs_fp32']} | {row['max_abs_diff']} | "
                         f"{e2e.get('p50_ms', '—')} | {e2e.get('p99_ms', '—')} |")
    b = report["build"]
    lines += ["", f"## Build ({b['ads']:,} sample-catalogue ads, flat index, model loaded)", "",
              "| system | ads/s | ratio |", "|---|---:|---:|",
              (f"| sentence-transformers encode + FAISS add | "
               f"{b[PLAIN_BUILD]['ads_per_s']} | 1.00 |")]
    lines += [f"| `build_index` {s} | {b[s]['ads_per_s']} | **{b[s]['ratio']:.2f}×** |"
              for s in b if s not in ("ads", PLAIN_BUILD)]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Encode speed-up over sentence-transformers fp32 by back-end and set (ratios, not raw
    rates: each system ran in its own process, under the load of its own moment)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(report["encode"])
    systems = [s for s in report["encode"][sets[0]] if s != BASELINE
               and isinstance(report["encode"][sets[0]][s], dict)]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        values = [report["encode"][s][system]["ratio"] for s in sets]
        ax.bar(np.arange(len(sets)) + i * width, values, width, label=system)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(2.5, color="grey", lw=0.8, ls="--", label="goal 2.5×")
    ax.set_xticks(np.arange(len(sets)) + width * (len(systems) - 1) / 2, sets, fontsize=8)
    ax.set_ylabel("encode speed / sentence-transformers fp32")
    ax.set_title(f"Encode speed-up by back-end, {report['threads']} threads")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def measure(system: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every row of one system (and its baselines), in this process."""
    if args.threads:
        torch.set_num_threads(args.threads)
    encoders = {"torch": Encoder(backend="torch", threads=args.threads)}
    if system == INT8:
        encoders[system] = int8_encoder(args.threads)
    elif system != "torch":
        encoders[system] = Encoder(backend=system, threads=args.threads)
    part: dict[str, Any] = {
        "encode": encode_speed(encoders, [system], text_sets(args.texts, args.long_texts),
                               args.repeats),
        "recall": recall_against_fp32(encoders, [system]),
    }
    if system == INT8:  # measured for the record; no back-end offers it
        return part
    sample = load_eval_dataset("sample-catalogue")
    ads = pd.DataFrame({"ad_id": sample.doc_ids(), "text": sample.doc_texts()}).head(args.build_ads)
    with tempfile.TemporaryDirectory(prefix="adrecall-speed-") as tmp:
        work = Path(tmp)
        part["build"] = build_speed(encoders, [system], ads, work, args.repeats)
        if args.reranker:
            queries = list(sample.queries.values())[:args.queries]
            backends = list(dict.fromkeys(["torch", system]))
            part["rerank"] = rerank_speed(args.reranker, backends, queries, sample.doc_texts(),
                                          args.threads)
            build_index(work / "build-ads.csv", work / "hnsw", model=encoders["torch"],
                        index_type="hnsw", progress=False)
            part["end_to_end"] = end_to_end(work / "hnsw", args.reranker, [system], queries,
                                            args.threads)
    return part


def merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Nested dicts of ``part`` merged into ``into``."""
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        elif key not in into:
            into[key] = value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reranker", help="a trained BertSim folder (rerank and end-to-end rows)")
    parser.add_argument("--texts", type=int, default=1000, help="texts per timed set")
    parser.add_argument("--long-texts", type=int, default=300, help="texts in the long set")
    parser.add_argument("--build-ads", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=30, help="queries timed per rerank/search")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    parser.add_argument("--system", help=argparse.SUPPRESS)  # one system, in a child process
    parser.add_argument("--part", help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.system:
        Path(args.part).write_text(json.dumps(measure(args.system, args)), encoding="utf-8")
        return 0
    systems = [b for b in BACKENDS if missing_reason(b) is None]
    systems += [INT8] if "onnx" in systems else []
    report: dict[str, Any] = {
        "command": "python -m benchmarks.speed " + " ".join(argv),
        "date": time.strftime("%Y-%m-%d"), "threads": args.threads or torch.get_num_threads(),
        "repeats": args.repeats, "reranker": args.reranker, "backends": systems,
        "isolation": "each system measured in its own process (with its fp32 references): "
                     "thread pools of different engines in one process (PyTorch's OpenMP, "
                     "OpenVINO's TBB, onnxruntime's) spin against each other on 2 cores",
    }
    with tempfile.TemporaryDirectory(prefix="adrecall-speed-parts-") as tmp:
        for system in systems:
            part = Path(tmp) / "part.json"
            subprocess.run([sys.executable, "-m", "benchmarks.speed", *argv, "--system", system,
                            "--part", str(part)], check=True)
            merge(report, json.loads(part.read_text(encoding="utf-8")))
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    (results / "speed.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (results / "speed.md").write_text(markdown(report), encoding="utf-8")
    plot(report, results / "speed.png")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
