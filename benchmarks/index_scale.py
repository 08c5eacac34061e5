"""Every index type at 1M vectors: build time, memory, disk, speed, recall, updates, compaction.

Vectors: :mod:`benchmarks.scale_vectors` (50,000 real MiniLM embeddings tiled with noise to
``--count``; 1,000 real held-out texts as queries). Each type is built as ``adrecall build``
builds it (:func:`index_build.index_assembly.assemble_index`, the factory strings and training
samples of :mod:`retrieval.faiss_index`), then measured on the 1,000 queries against exact
search: batch QPS (one ``search`` call of all 1,000), p50/p99 of single-query latency, and
recall@10 at every value of its search parameter (the curve in the PNG); the table row is the
smallest value that reaches recall@10 0.95. "Memory" is the growth of a fresh process's RSS
when it reads the index file (``--mmap`` rows: when it maps it); "disk" the file's size.
HNSW is built on the first ``--hnsw-count`` vectors only (measured there, build time
extrapolated to ``--count`` as n log n, and labelled so): at 1M on 2 cores it would take most
of the run. Updates: 1,000 vectors replaced (removed and added under new ids) plus 1,000
added, and the index file written again (what ``adrecall update`` does besides embedding, which
runs at the encoder's ~200 ads/s on this machine); compaction: ``adrecall compact``'s rebuild
from stored vectors, measured for flat and HNSW (IVF-Flat's re-trains, so it costs its build
time again; SQ8 and IVF-PQ only renumber). ``auto`` under ``--max-memory``: the choice the build makes, with its
held-out recall.

    flock /tmp/adrecall-heavy.lock python -m benchmarks.index_scale --threads 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.scale_vectors import (
    CACHE,
    NOISE,
    QUERY_TEXTS,
    REAL_TEXTS,
    real_vectors,
    tiled_vectors,
)
from index_build.compaction import _stored_vectors
from index_build.index_assembly import assemble_index, build_best_index
from index_build.index_choice import candidate_specs
from index_build.index_tuning import EF_SEARCH_LADDER, RECALL_K, _ladder, recall_at_k
from retrieval.faiss_index import TUNED_PARAMS, apply_search_params, index_spec
from retrieval.index_memory import estimate_index_bytes, parse_memory
from retrieval.vector_removal import remove_vectors

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.95
SINGLE_QUERIES = {"flat": 50, "sq8": 50}
"""Single-query latency samples: fewer for the exhaustive scans (tens of ms each)."""
_RSS = """
import faiss, sys
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096
before = rss()
index = faiss.read_index(sys.argv[1], int(sys.argv[2]))
print(rss() - before)
"""


def batches(vectors: np.ndarray, step: int = 100_000):  # type: ignore[no-untyped-def]
    """The benchmark's vectors as the build hands them over: (vectors, ids) batches."""
    return lambda: ((np.ascontiguousarray(vectors[i:i + step]),
                     np.arange(i, min(i + step, len(vectors)), dtype=np.int64))
                    for i in range(0, len(vectors), step))


def loaded_bytes(path: Path, flags: int = 0) -> int:
    """RSS growth of a fresh process that reads (or maps) the index at ``path``."""
    done = subprocess.run([sys.executable, "-c", _RSS, str(path), str(flags)],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def speed(index: faiss.Index, queries: np.ndarray, singles: int) -> dict[str, float]:
    """Batch QPS of all queries in one call, and single-query p50/p99 in ms."""
    started = time.perf_counter()
    index.search(queries, RECALL_K)
    batch = time.perf_counter() - started
    latencies = []
    for query in queries[:singles]:
        started = time.perf_counter()
        index.search(query[None, :], RECALL_K)
        latencies.append((time.perf_counter() - started) * 1000)
    measured = {"batch_qps": round(len(queries) / batch, 1)}
    if latencies:
        measured |= {"p50_ms": round(float(np.percentile(latencies, 50)), 3),
                     "p99_ms": round(float(np.percentile(latencies, 99)), 3)}
    return measured


def recall(index: faiss.Index, queries: np.ndarray, exact: np.ndarray) -> float:
    _, found = index.search(queries, RECALL_K)
    return round(recall_at_k(found, exact, np.full(len(queries), -1), RECALL_K), 4)


def measure_type(index_type: str, vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray,
                 work: Path) -> tuple[dict, faiss.Index]:
    """Build, store, load and sweep one index type over ``vectors``."""
    count, dimension = vectors.shape
    spec = index_spec(index_type, count, dimension)
    started = time.perf_counter()
    index = assemble_index(spec, dimension, batches(vectors), count)
    build = time.perf_counter() - started
    path = work / f"{index_type}-{count}.faiss"
    faiss.write_index(index, str(path))
    row: dict = {"type": index_type, "factory": spec.factory, "count": count,
                 "build_s": round(build, 1), "disk_bytes": path.stat().st_size,
                 "memory_bytes": loaded_bytes(path),
                 "mmap_memory_bytes": loaded_bytes(path, faiss.IO_FLAG_MMAP_IFC),
                 "estimate_bytes": estimate_index_bytes(spec, count, dimension)}
    name = TUNED_PARAMS.get(index_type)
    sweep = []
    values = EF_SEARCH_LADDER if index_type == "hnsw" else _ladder(index_type, spec.factory) \
        if name else [None]
    for value in values:
        if value is not None:
            apply_search_params(index, {name: value})
        point = {"param": value, "recall_at_10": recall(index, queries, exact),
                 **speed(index, queries, 0)}
        sweep.append(point)
        print(f"  {index_type} {name}={value}: {point}", flush=True)
        if point["recall_at_10"] >= 0.995 or (value is not None and value >= 512):
            break
    chosen = next((p for p in sweep if p["recall_at_10"] >= TARGET), sweep[-1])
    if chosen["param"] is not None:
        apply_search_params(index, {name: chosen["param"]})
    row.update({"param_name": name, "param": chosen["param"],
                "recall_at_10": chosen["recall_at_10"],
                **speed(index, queries, SINGLE_QUERIES.get(index_type, 300)), "sweep": sweep})
    path.unlink()
    return row, index


def update_cost(index: faiss.Index, vectors: np.ndarray, work: Path, batch: int = 1000) -> dict:
    """Replace ``batch`` ads and add ``batch`` new ones, then write the index file anew."""
    rng = np.random.default_rng(1)
    count = int(index.ntotal)
    replaced = rng.choice(count, batch, replace=False).astype(np.int64)
    fresh = np.ascontiguousarray(vectors[rng.choice(len(vectors), 2 * batch)])
    started = time.perf_counter()
    tombstoned = remove_vectors(index, replaced)
    index.add_with_ids(fresh, np.arange(10**9, 10**9 + 2 * batch, dtype=np.int64))
    changed = time.perf_counter() - started
    path = work / "updated.faiss"
    faiss.write_index(index, str(path))
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - started
    path.unlink()
    return {"ads_changed": 2 * batch, "index_seconds": round(changed, 2),
            "with_write_seconds": round(seconds, 2), "ads_per_second": round(2 * batch / seconds, 1),
            "tombstoned": len(tombstoned)}


def compaction_cost(index: faiss.Index, index_type: str, dimension: int) -> dict:
    """``adrecall compact``'s rebuild of ``index`` from its stored vectors."""
    ids = faiss.vector_to_array(index.id_map)
    spec = index_spec(index_type, len(ids), dimension)
    started = time.perf_counter()
    assemble_index(spec, dimension, _stored_vectors(index, ids), len(ids))
    return {"seconds": round(time.perf_counter() - started, 1), "count": len(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--hnsw-count", type=int, default=250_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-memory", default="512M")
    parser.add_argument("--types", default="flat,sq8,ivf,ivfpq,hnsw")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    work = CACHE / "work"
    work.mkdir(parents=True, exist_ok=True)
    vectors = tiled_vectors(args.count)
    _, queries = real_vectors()
    rows, exact_by_count, extras = [], {}, {}
    for index_type in args.types.split(","):
        count = args.hnsw_count if index_type == "hnsw" else args.count
        part = vectors[:count]
        if count not in exact_by_count:
            flat = assemble_index(index_spec("flat", count, part.shape[1]), part.shape[1],
                                  batches(part), count)
            exact_by_count[count] = flat.search(queries, RECALL_K)[1]
            del flat
        print(f"{index_type} at {count:,}", flush=True)
        row, index = measure_type(index_type, part, queries, exact_by_count[count], work)
        if index_type in ("flat", "hnsw"):  # IVF's: a rebuild, as long as its build
            row["compaction"] = compaction_cost(index, index_type, part.shape[1])
        row["update"] = update_cost(index, part, work)
        if count != args.count:
            row["build_s_extrapolated"] = round(
                row["build_s"] * args.count * math.log(args.count) / (count * math.log(count)), 1)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "sweep"}), flush=True)
        del index
    budget = parse_memory(args.max_memory)
    specs = candidate_specs("auto", args.count, vectors.shape[1], budget)
    started = time.perf_counter()
    _, chosen, tuning = build_best_index(specs, vectors.shape[1], batches(vectors), args.count,
                                         TARGET, auto=True)
    extras["auto"] = {"max_memory": args.max_memory, "budget_bytes": budget,
                      "candidates": [s.index_type for s in specs], "chosen": chosen.index_type,
                      "factory": chosen.factory, "seconds": round(time.perf_counter() - started, 1),
                      **(tuning.to_dict() if tuning else {})}
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} FAISS threads",
        "faiss": faiss.__version__, "count": args.count, "hnsw_count": args.hnsw_count,
        "vectors": {"real_texts": REAL_TEXTS, "query_texts": QUERY_TEXTS, "noise": NOISE,
                    "made_by": "benchmarks/scale_vectors.py"},
        "target_recall": TARGET, "rows": rows, **extras,
        "command": "python -m benchmarks.index_scale " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "index_scale.json").write_text(json.dumps(result, indent=1) + "\n")
    from benchmarks.index_scale_report import write_report

    write_report(result, RESULTS)


if __name__ == "__main__":
    main()
