"""What does building on a Dask cluster cost, and how far would it scale?

Measured here, each build in a fresh process (its imports, model loads and cluster start
included), systems interleaved round by round on the same table:
  local     build_index(table, out): one process, the model on 2 threads
  dask-1    build_index(table, out, workers=1): a local cluster of 1 process x 1 thread
  dask-2    build_index(table, out, workers=2): a local cluster of 2 processes x 1 thread
On 2 cores dask-2 cannot be faster than local; its ratio to local measures the engine's
overhead (goal: lose at most 10%). dask-2 / dask-1 shows two workers sharing the machine.

Projected: the wall time of an N-worker build of a larger catalogue, from the measured
per-worker encode rate, the client's merge cost per ad (flat here; IVF from
results/index_scale.json), the client's table-reading rate and the shard bytes each ad writes
to shared storage. See :func:`project` for the model and its assumptions.

Texts: STS-B English sentences and QBQTC titles from $ADRECALL_DATASETS, half each.

    python -m benchmarks.dask_scaling [--n 20000] [--rounds 3] [--backend auto]
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


def project(rate_per_worker: float, merge_s_per_ad: float, read_rate: float,
            bytes_per_ad: float, startup_s: float, catalogue: int) -> list[dict]:
    """Wall time of an N-worker build of ``catalogue`` ads, assuming:

    - every worker encodes at the measured rate of one 1-thread worker here (a k-core machine
      counts as about k workers while memory bandwidth holds), with no slow-down from others;
    - the client reads the table once, serially, and workers never wait for it while the
      workers' total rate is below its read rate; above it, reading is the bottleneck;
    - the shared store accepts STORAGE_MB_PER_S; above that, writing shards is the bottleneck;
    - the merge is serial on the client and starts when the last shard is written;
    - startup (cluster, model load on each worker, in parallel) is paid once.
    Speed-up S(N) = T(1) / T(N); efficiency S(N) / N; marginal: the rate the N-th worker adds
    over one worker's rate, between listed N (per added worker).
    """
    storage_rate = STORAGE_MB_PER_S * 1e6 / bytes_per_ad
    rows, previous = [], None
    for n in PROJECT_WORKERS:
        encode_rate = min(n * rate_per_worker, read_rate, storage_rate)
        bound = ("workers" if encode_rate == n * rate_per_worker
                 else "client reading" if encode_rate == read_rate else "shared storage")
        seconds = startup_s + catalogue / encode_rate + catalogue * merge_s_per_ad
        rows.append({"workers": n, "hours": seconds / 3600, "bound": bound,
                     "merge_share": catalogue * merge_s_per_ad / seconds})
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
    parser.add_argument("--one", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.table, args.work, args.backend, args.chunk_rows)))
        return 0

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
                print(f"round {round_number + 1} {system}: {runs[system][-1]['wall_seconds']:.1f} s",
                      flush=True)
        bytes_per_ad = _shard_bytes_per_ad(table, work, args.chunk_rows)
    result = summarise(runs, len(texts), read_rate, bytes_per_ad, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dask_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "dask_scaling.md").write_text(markdown(result))
    plot(result, args.out / "dask_scaling.png")
    print(markdown(result))
    return 0


def summarise(runs: dict[str, list[dict]], n: int, read_rate: float, bytes_per_ad: float,
              args: argparse.Namespace) -> dict:
    def median(system: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[system])

    ratios = [local["wall_seconds"] / two["wall_seconds"]
              for local, two in zip(runs["local"], runs["dask-2"])]
    scaling = [one["wall_seconds"] / two["wall_seconds"]
               for one, two in zip(runs["dask-1"], runs["dask-2"])]
    # a worker's rate while every core is busy (dask-2 over 2), not dask-1's with a core spare
    rate_per_worker = n / median("dask-2", "encode_seconds") / 2
    merge_per_ad = median("local", "merge_seconds") / n
    startup = median("dask-2", "wall_seconds") - median("dask-2", "encode_seconds") \
        - median("dask-2", "merge_seconds")
    ivf_merge_per_ad = _ivf_build_seconds_per_ad()
    return {
        "benchmark": "dask_scaling",
        "command": "python -m benchmarks.dask_scaling " + shlex.join(sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPUs",
        "n_ads": n, "rounds": args.rounds, "backend": args.backend, "chunk_rows": args.chunk_rows,
        "runs": runs,
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
            "ivf_merge_s_per_ad": ivf_merge_per_ad,
            "client_read_ads_per_s": round(read_rate),
            "shard_bytes_per_ad": round(bytes_per_ad),
            "startup_s": round(startup, 2),
            "storage_mb_per_s_assumed": STORAGE_MB_PER_S,
        },
        "projection_catalogue": PROJECT_CATALOGUE,
        "projection": {
            kind: project(rate_per_worker, merge, read_rate, bytes_per_ad, startup,
                          PROJECT_CATALOGUE)
            for kind, merge in (("flat", merge_per_ad), ("ivf", ivf_merge_per_ad))
        },
    }


def _shard_bytes_per_ad(table: Path, work: Path, chunk_rows: int) -> float:
    """Bytes one ad's shard files take (vectors + rows), from one chunk written locally."""
    from index_build.ad_source import AdSource
    from index_build.shards import ShardStore

    chunk = next(AdSource(table).chunks(chunk_rows))
    store = ShardStore.at(work / "shard-size")
    store.create()
    import numpy as np

    store.write(chunk, np.zeros((len(chunk), 384), dtype=np.float32), 0)
    files = list((work / "shard-size").iterdir())
    return sum(f.stat().st_size for f in files) / len(chunk)


def _ivf_build_seconds_per_ad() -> float:
    """The IVF-Flat build's seconds per vector at 1M (train + add on the client), from
    results/index_scale.json: what a client spends merging an IVF index."""
    scale = json.loads((RESULTS / "index_scale.json").read_text())
    row = next(r for r in scale["rows"] if r["type"] == "ivf")
    return row["build_s"] / row["count"]


def markdown(result: dict) -> str:
    med, measured = result["median"], result["measured_for_projection"]
    lines = [
        "# Building on a Dask cluster: overhead here, scaling on paper",
        "",
        (f"{result['n_ads']:,} real texts (STS-B English + QBQTC titles), backend "
        f"{result['backend']}, chunks of {result['chunk_rows']}, {result['rounds']} interleaved "
        f"rounds, each build in a fresh process (imports, model load, cluster start included); "
        f"{result['machine']}, {result['date']}."),
        f"Command: `{result['command']}`",
        "",
        "| system | wall s (median) | encode s | merge s | ads/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for system, label in (("local", "local build, 1 process x 2 threads"),
                          ("dask-1", "Dask, 1 worker x 1 thread"),
                          ("dask-2", "Dask, 2 workers x 1 thread")):
        m = med[system]
        lines.append(f"| {label} | {m['wall_seconds']:.1f} | {m['encode_seconds']:.1f} | "
                     f"{m['merge_seconds']:.1f} | {result['n_ads'] / m['wall_seconds']:.0f} |")
    lines += [
        "",
        (f"- **dask-2 ÷ local (rate), median of per-round ratios: "
        f"{result['dask2_over_local_rate']}** (per round "
        f"{result['dask2_over_local_rate_per_round']}; goal ≥ 0.9: "
        f"{'met' if result['dask2_over_local_rate'] >= 0.9 else 'not met'})."),
        (f"- dask-2 ÷ dask-1 (rate): {result['dask2_over_dask1_rate']} (per round "
        f"{result['dask2_over_dask1_rate_per_round']}); both workers share the same 2 cores."),
        "",
        f"## Projection: {result['projection_catalogue']:,} ads on N workers",
        "",
        (f"Measured inputs: one 1-thread worker encodes "
        f"{measured['encode_ads_per_s_per_worker']} ads/s; the client merges a flat index at "
        f"{measured['flat_merge_s_per_ad'] * 1e6:.1f} µs/ad (the local build's merge) and an IVF-Flat one at "
        f"{measured['ivf_merge_s_per_ad'] * 1e6:.0f} µs/ad (train + add at 1M, "
        f"index_scale.json); it reads the table at {measured['client_read_ads_per_s']:,} ads/s; "
        f"each ad writes {measured['shard_bytes_per_ad']} bytes of shards "
        f"(assumed store bandwidth {measured['storage_mb_per_s_assumed']:.0f} MB/s); startup "
        f"{measured['startup_s']} s. Assumptions: `benchmarks/dask_scaling.py: project`."),
        "",
        ("| workers | flat: hours | speed-up | efficiency | per added worker | bound | "
        "IVF: hours | speed-up | efficiency | per added worker |"),
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for flat, ivf in zip(result["projection"]["flat"], result["projection"]["ivf"]):
        lines.append(
            f"| {flat['workers']} | {flat['hours']:.2f} | {flat['speedup']:.1f} | "
            f"{flat['efficiency']:.2f} | {flat.get('marginal', 1.0):.2f} | {flat['bound']} | "
            f"{ivf['hours']:.2f} | {ivf['speedup']:.1f} | {ivf['efficiency']:.2f} | "
            f"{ivf.get('marginal', 1.0):.2f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for kind in ("flat", "ivf"):
        rows = result["projection"][kind]
        axis.plot([r["workers"] for r in rows], [r["speedup"] for r in rows], marker="o",
                  label=f"{kind} index (merge on the client)")
    workers = [r["workers"] for r in result["projection"]["flat"]]
    axis.plot(workers, workers, linestyle=":", color="grey", label="linear")
    axis.plot(workers, [0.8 * w for w in workers], linestyle="--", color="grey",
              label="efficiency 0.8")
    axis.set_xlabel("workers (1 thread each, this machine's rate)")
    axis.set_ylabel(f"projected speed-up, {result['projection_catalogue']:,} ads")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
