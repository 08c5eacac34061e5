"""What does building on a Dask cluster cost, and how far would it scale?

Measured here, each build in a fresh process (its imports, model loads and cluster start
included), systems interleaved round by round on the same table:
  local     build_index(table, out): one process, the model on 2 threads
  dask-1    build_index(table, out, workers=1): a local cluster of 1 process x 1 thread
  dask-2    build_index(table, out, workers=2): a local cluster of 2 processes x 1 thread
On 2 cores dask-2 cannot be faster than local; its ratio to local measures the engine's
overhead (goal: lose at most 10%). dask-2 / dask-1 shows two workers sharing the machine.

Projected: the wall time of an N-worker build of 10M ads, from the measured per-worker encode
rate, the client's merge cost per ad, its table-reading rate, the shard bytes each ad writes to
shared storage, and for IVF the measured training and list-finding costs (lists found on the
client, as before, or on the workers). See :func:`project` for the model and its assumptions.

Texts: STS-B English sentences and QBQTC titles from $ADRECALL_DATASETS, half each.

    python -m benchmarks.dask_scaling [--n 20000] [--rounds 3] [--backend auto]
    python -m benchmarks.dask_scaling --reuse-builds results/dask_scaling.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.build_throughput import benchmark_texts

RESULTS = Path(__file__).parent / "results"
SYSTEMS = {"local": None, "dask-1": 1, "dask-2": 2}
PROJECT_CATALOGUE = 10_000_000
PROJECT_WORKERS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
STORAGE_MB_PER_S = 200.0
"""Assumed write bandwidth of the shared store (a modest NFS server or object store prefix)."""


def run_one(system: str, table: Path, work: Path, backend: str, chunk_rows: int) -> dict:
    """One build in this process; its summary plus the wall time around the call."""
    from index_build.build_job import build_index

    started = time.perf_counter()
    summary = build_index(table, work / f"idx-{system}-{time.monotonic_ns()}", backend=backend,
                          workers=SYSTEMS[system], chunk_rows=chunk_rows, progress=False)
    return {"wall_seconds": time.perf_counter() - started, **summary.to_dict()}


def run_in_subprocess(system: str, table: Path, work: Path, backend: str,
                      chunk_rows: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.dask_scaling", "--one", system,
               "--table", str(table), "--work", str(work), "--backend", backend,
               "--chunk-rows", str(chunk_rows)]
    done = subprocess.run(command, check=True, capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def client_read_rate(table: Path, chunk_rows: int) -> float:
    """Ads per second the client reads and chunks the table at (it feeds every worker)."""
    from index_build.ad_source import AdSource

    source = AdSource(table)
    started = time.perf_counter()
    count = sum(len(chunk) for chunk in source.chunks(chunk_rows))
    return count / (time.perf_counter() - started)


def ivf_costs(dimension: int = 384, count: int = 1_000_000) -> dict[str, float]:
    """Seconds of the IVF work a build at ``count`` ads does, on random unit vectors (the cost
    of k-means rounds and list assignment does not depend on the data): training on the
    build's sample, finding lists on 2 threads (the client) and on 1 (a worker), and adding
    with given lists. Run after the builds, alone."""
    import faiss
    import numpy as np

    from index_build.coarse_lists import CoarseAssigner, add_with_lists
    from retrieval.faiss_index import create_index, index_spec, train_index, training_size

    spec = index_spec("ivf", count, dimension)
    rng = np.random.default_rng(0)

    def unit(rows: int) -> np.ndarray:
        vectors = rng.standard_normal((rows, dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    index = create_index(spec, dimension)
    sample = unit(training_size(spec))
    started = time.perf_counter()
    train_index(index, sample)
    train_s = time.perf_counter() - started
    assigner = CoarseAssigner(faiss.extract_index_ivf(index).quantizer, None)
    vectors = unit(50_000)
    seconds = {}
    for threads in (2, 1):
        faiss.omp_set_num_threads(threads)
        started = time.perf_counter()
        lists = assigner.lists(vectors)
        seconds[threads] = time.perf_counter() - started
    faiss.omp_set_num_threads(2)
    started = time.perf_counter()
    add_with_lists(index, [(vectors, np.arange(len(vectors)))], [lists])
    add_s = time.perf_counter() - started
    return {"nlist": faiss.extract_index_ivf(index).nlist, "train_sample": len(sample),
            "train_s": train_s, "lists_s_per_ad_2_threads": seconds[2] / len(vectors),
            "lists_s_per_ad_1_thread": seconds[1] / len(vectors),
            "add_with_lists_s_per_ad": add_s / len(vectors)}


def scenarios(merge_per_ad: float, ivf: dict[str, float], catalogue: int) -> dict[str, dict]:
    """What each kind of build costs per ad on a worker and on the client, and once on the
    client, at ``catalogue`` ads. IVF costs are scaled from the measured nlist to the
    catalogue's (4·√n lists): list finding grows with nlist, training with nlist² (its sample
    is 39 points per list)."""
    from retrieval.faiss_index import ivf_lists

    scale = ivf_lists(catalogue) / ivf["nlist"]
    train = ivf["train_s"] * scale ** 2
    return {
        "flat": {"worker_s_per_ad": 0.0, "client_s_per_ad": merge_per_ad, "client_once_s": 0.0},
        "ivf, lists on the client": {
            "worker_s_per_ad": 0.0, "client_once_s": train,
            "client_s_per_ad": merge_per_ad + ivf["lists_s_per_ad_2_threads"] * scale},
        "ivf, lists on the workers": {
            "worker_s_per_ad": ivf["lists_s_per_ad_1_thread"] * scale, "client_once_s": train,
            "client_s_per_ad": merge_per_ad + ivf["add_with_lists_s_per_ad"]},
    }


def project(rate_per_worker: float, scenario: dict, read_rate: float, bytes_per_ad: float,
            startup_s: float, catalogue: int) -> list[dict]:
    """Wall time of an N-worker build of ``catalogue`` ads, assuming:

    - every worker encodes at the measured rate of one 1-thread worker here (a k-core machine
      counts as about k workers while memory bandwidth holds), plus the scenario's per-ad work
      on workers, with no slow-down from others;
    - the client reads the table once, serially, and workers never wait for it while the
      workers' total rate is below its read rate; above it, reading is the bottleneck;
    - the shared store accepts STORAGE_MB_PER_S; above that, writing shards is the bottleneck;
    - the merge (the scenario's client work) is serial and starts when the last shard is in;
    - startup (cluster, model load on each worker, in parallel) is paid once.
    Speed-up S(N) = T(1) / T(N); efficiency S(N) / N; marginal: the speed-up each worker
    added between listed N brings, in units of one worker's.
    """
    storage_rate = STORAGE_MB_PER_S * 1e6 / bytes_per_ad
    worker_rate = 1 / (1 / rate_per_worker + scenario["worker_s_per_ad"])
    merge = scenario["client_once_s"] + catalogue * scenario["client_s_per_ad"]
    rows, previous = [], None
    for n in PROJECT_WORKERS:
        encode_rate = min(n * worker_rate, read_rate, storage_rate)
        bound = ("workers" if encode_rate == n * worker_rate
                 else "client reading" if encode_rate == read_rate else "shared storage")
        seconds = startup_s + catalogue / encode_rate + merge
        rows.append({"workers": n, "hours": seconds / 3600, "bound": bound,
                     "merge_share": merge / seconds})
    single = rows[0]["hours"]
    for row in rows:
        row["speedup"] = single / row["hours"]
        row["efficiency"] = row["speedup"] / row["workers"]
        if previous is not None:
            row["marginal"] = ((row["speedup"] - previous["speedup"])
                               / (row["workers"] - previous["workers"]))
        previous = row
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--chunk-rows", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--reuse-builds", type=Path, default=None, metavar="JSON",
                        help="take the builds from this earlier dask_scaling.json and measure "
                        "only the IVF costs and the projection")
    parser.add_argument("--one", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.table, args.work, args.backend, args.chunk_rows)))
        return 0
    builds = (json.loads(args.reuse_builds.read_text())["builds"] if args.reuse_builds
              else run_builds(args))
    result = summarise(builds, ivf_costs(), args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dask_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "dask_scaling.md").write_text(markdown(result))
    plot(result, args.out / "dask_scaling.png")
    print(markdown(result))
    return 0


def run_builds(args: argparse.Namespace) -> dict:
    """Every system's builds, interleaved round by round, and what the projection needs of
    the table: the client's reading rate and the shard bytes per ad."""
    texts = benchmark_texts(args.n)
    runs: dict[str, list[dict]] = {name: [] for name in SYSTEMS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = work / "ads.parquet"
        pd.DataFrame({"ad_id": [f"t{i}" for i in range(len(texts))], "text": texts}).to_parquet(table)
        read_rate = client_read_rate(table, args.chunk_rows)
        for round_number in range(args.rounds):
            order = list(SYSTEMS)[round_number % 3:] + list(SYSTEMS)[:round_number % 3]
            for system in order:
                runs[system].append(run_in_subprocess(system, table, work, args.backend,
                                                      args.chunk_rows))
                print(f"round {round_number + 1} {system}: "
                      f"{runs[system][-1]['wall_seconds']:.1f} s", flush=True)
        bytes_per_ad = _shard_bytes_per_ad(table, work, args.chunk_rows)
    return {"command": "python -m benchmarks.dask_scaling " + shlex.join(sys.argv[1:]),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "n_ads": len(texts), "rounds": args.rounds, "backend": args.backend,
            "chunk_rows": args.chunk_rows, "client_read_ads_per_s": round(read_rate),
            "shard_bytes_per_ad": round(bytes_per_ad), "runs": runs}


def summarise(builds: dict, ivf: dict[str, float], args: argparse.Namespace) -> dict:
    runs, n = builds["runs"], builds["n_ads"]

    def median(system: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[system])

    ratios = [local["wall_seconds"] / two["wall_seconds"]
              for local, two in zip(runs["local"], runs["dask-2"])]
    scaling = [one["wall_seconds"] / two["wall_seconds"]
               for one, two in zip(runs["dask-1"], runs["dask-2"])]
    # a worker's rate while every core is busy (dask-2 over 2), not dask-1's with a core spare
    rate_per_worker = n / median("dask-2", "encode_seconds") / 2
    merge_per_ad = median("local", "merge_seconds") / n
    startup = (median("dask-2", "wall_seconds") - median("dask-2", "encode_seconds")
               - median("dask-2", "merge_seconds"))
    kinds = scenarios(merge_per_ad, ivf, PROJECT_CATALOGUE)
    return {
        "benchmark": "dask_scaling",
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{len(os.sched_getaffinity(0))} CPUs",
        "builds": builds,
        "median": {system: {key: round(median(system, key), 2)
                            for key in ("wall_seconds", "encode_seconds", "merge_seconds")}
                   for system in SYSTEMS},
        "dask2_over_local_rate_per_round": [round(r, 4) for r in ratios],
        "dask2_over_local_rate": round(statistics.median(ratios), 4),
        "dask2_over_dask1_rate_per_round": [round(r, 4) for r in scaling],
        "dask2_over_dask1_rate": round(statistics.median(scaling), 4),
        "goal": "dask-2 loses at most 10% against local (rate ratio >= 0.9)",
        "measured_for_projection": {
            "encode_ads_per_s_per_worker": round(rate_per_worker, 1),
            "encode_ads_per_s_one_worker_alone": round(n / median("dask-1", "encode_seconds"), 1),
            "flat_merge_s_per_ad": merge_per_ad,
            "client_read_ads_per_s": builds["client_read_ads_per_s"],
            "shard_bytes_per_ad": builds["shard_bytes_per_ad"],
            "startup_s": round(startup, 2),
            "storage_mb_per_s_assumed": STORAGE_MB_PER_S,
            "ivf": ivf,
        },
        "projection_catalogue": PROJECT_CATALOGUE,
        "scenarios": kinds,
        "projection": {
            kind: project(rate_per_worker, scenario, builds["client_read_ads_per_s"],
                          builds["shard_bytes_per_ad"], startup, PROJECT_CATALOGUE)
            for kind, scenario in kinds.items()
        },
    }


def _shard_bytes_per_ad(table: Path, work: Path, chunk_rows: int) -> float:
    """Bytes one ad's shard files take (vectors + rows), from one chunk written locally."""
    import numpy as np

    from index_build.ad_source import AdSource
    from index_build.shards import ShardStore

    chunk = next(AdSource(table).chunks(chunk_rows))
    store = ShardStore(str(work / "shard-size"), "size")
    store.prepare(fresh=True)
    store.write(chunk, np.zeros((len(chunk), 384), dtype=np.float32), 0)
    files = list((work / "shard-size").iterdir())
    return sum(f.stat().st_size for f in files) / len(chunk)


def markdown(result: dict) -> str:
    med, measured, builds = result["median"], result["measured_for_projection"], result["builds"]
    ivf = measured["ivf"]
    lines = [
        "# Building on a Dask cluster: overhead here, scaling on paper",
        "",
        (f"{builds['n_ads']:,} real texts (STS-B English + QBQTC titles), backend "
         f"{builds['backend']}, chunks of {builds['chunk_rows']}, {builds['rounds']} interleaved "
         "rounds, each build in a fresh process (model load and cluster start included, the "
         f"client's own imports not); {result['machine']}, {builds['date']}."),
        f"Command: `{builds['command']}`",
        "",
        "| system | wall s (median) | encode s | merge s | ads/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for system, label in (("local", "local build, 1 process x 2 threads"),
                          ("dask-1", "Dask, 1 worker x 1 thread"),
                          ("dask-2", "Dask, 2 workers x 1 thread")):
        m = med[system]
        lines.append(f"| {label} | {m['wall_seconds']:.1f} | {m['encode_seconds']:.1f} | "
                     f"{m['merge_seconds']:.1f} | {builds['n_ads'] / m['wall_seconds']:.0f} |")
    lines += [
        "",
        (f"- **dask-2 ÷ local (rate), median of per-round ratios: "
         f"{result['dask2_over_local_rate']}** (per round "
         f"{result['dask2_over_local_rate_per_round']}; goal ≥ 0.9: "
         f"{'met' if result['dask2_over_local_rate'] >= 0.9 else 'not met'})."),
        (f"- dask-2 ÷ dask-1 (rate): {result['dask2_over_dask1_rate']} (per round "
         f"{result['dask2_over_dask1_rate_per_round']}); both workers share the same 2 cores."),
        (f"- Before encoding, dask-2 spends {measured['startup_s']} s (table scan, cluster "
         "start, the model loaded on both workers at once); encode s counts from the first "
         "chunk sent."),
        "",
        f"## Projection: {result['projection_catalogue']:,} ads on N workers",
        "",
        (f"Measured inputs: a 1-thread worker encodes {measured['encode_ads_per_s_per_worker']} "
         "ads/s while another runs beside it (dask-2's rate over 2; alone: "
         f"{measured['encode_ads_per_s_one_worker_alone']}); the client merges a flat index at "
         f"{measured['flat_merge_s_per_ad'] * 1e6:.1f} µs/ad (the local build's merge), reads "
         f"the table at {measured['client_read_ads_per_s']:,} ads/s; each ad writes "
         f"{measured['shard_bytes_per_ad']} bytes of shards (assumed store bandwidth "
         f"{measured['storage_mb_per_s_assumed']:.0f} MB/s); startup {measured['startup_s']} s."),
        (f"IVF at 1M ads ({ivf['nlist']} lists), measured on random unit vectors: training on "
         f"{ivf['train_sample']:,} points {ivf['train_s']:.0f} s (2 threads); finding lists "
         f"{ivf['lists_s_per_ad_2_threads'] * 1e6:.0f} µs/ad on 2 threads, "
         f"{ivf['lists_s_per_ad_1_thread'] * 1e6:.0f} µs/ad on 1; adding with given lists "
         f"{ivf['add_with_lists_s_per_ad'] * 1e6:.1f} µs/ad. At 10M (4·√n lists) these are "
         "scaled: lists ∝ nlist, training ∝ nlist². Assumptions: "
         "`benchmarks/dask_scaling.py: project`."),
        "",
    ]
    kinds = list(result["projection"])
    lines.append("| workers | " + " | ".join(f"{k}: hours | efficiency | per added worker"
                                           for k in kinds) + " | bound |")
    lines.append("|---:|" + "---:|---:|---:|" * len(kinds) + "---|")
    for rows in zip(*(result["projection"][k] for k in kinds)):
        cells = " | ".join(f"{r['hours']:.2f} | {r['efficiency']:.2f} | {r.get('marginal', 1.0):.2f}"
                           for r in rows)
        lines.append(f"| {rows[0]['workers']} | {cells} | {rows[0]['bound']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4))
    for kind, rows in result["projection"].items():
        axis.plot([r["workers"] for r in rows], [r["speedup"] for r in rows], marker="o",
                  label=kind)
    workers = [r["workers"] for r in next(iter(result["projection"].values()))]
    axis.plot(workers, workers, linestyle=":", color="grey", label="linear")
    axis.plot(workers, [0.8 * w for w in workers], linestyle="--", color="grey",
              label="efficiency 0.8")
    axis.set_xlabel("workers (1 thread each, at this machine's measured rate)")
    axis.set_ylabel(f"projected speed-up, {result['projection_catalogue']:,} ads")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
