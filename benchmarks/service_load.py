"""Load test of ``adrecall serve`` on loopback: latency and throughput at concurrency 1, 8
and 32, micro-batching on and off, against in-process ``Retriever.search``.

An index of every third ad of the sample catalogue (1,000 ads, the embedded MiniLM) is built
in ``--work-dir`` (reused when there). In-process single-query ``Retriever.search`` latency is
measured first, with no server running. Then for each batching setting a server runs as its
own process (``python -m adrecall serve --port 0 --json``, batching off: ``--no-batching``),
and an asyncio load generator (httpx, one connection per worker) keeps ``c`` requests in flight
for ``--seconds`` per cell after a short warm-up: ``/encode`` with one ad text per request (as
BertClient is used) and ``/search`` with one query, k 10. Reported per cell: requests per
second, p50/p95/p99 latency, errors, and the mean texts per model call (from ``/metrics``).
Client and server share the machine's cores, as on any loopback test.

Goals (the issue): at concurrency 32, batching on gives >= 3x the encode throughput of batching
off; ``/search`` p50 at concurrency 1 within 1.5x of in-process ``Retriever.search``.

Results: ``benchmarks/results/service_load.{json,md}``.

    flock /tmp/adrecall-heavy.lock python -m benchmarks.service_load --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CATALOGUE = Path(__file__).resolve().parents[1] / "index_build" / "sample_catalogue" / "ads.csv"
CONCURRENCY = (1, 8, 32)
QUERIES = ["cheap way to get to Tokyo", "my car makes a noise when I brake",
           "learn a language before my trip", "family dentist near me", "running shoes sale",
           "孩子学编程", "affordable flights to Japan", "home insurance quote",
           "best laptop for students", "weekend spa deals", "北京飞上海", "used cars under 10k"]


def build(work: Path) -> tuple[Path, list[str]]:
    """The benchmark index (every third catalogue ad) and the ad texts encode requests send."""
    from index_build.build_job import build_index

    ads = pd.read_csv(CATALOGUE).iloc[::3]
    index = work / "index"
    if not (index / "manifest.json").is_file():
        work.mkdir(parents=True, exist_ok=True)
        ads.to_csv(work / "ads.csv", index=False)
        build_index(work / "ads.csv", index, progress=False)
    return index, ads["text"].tolist()


def in_process_search(index: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Single-query ``Retriever.search`` latency (k 10) in this process, after a warm-up: called
    from the main thread, and from one worker thread as the server calls it. (On this machine
    the main thread is far slower: torch's and FAISS's OpenMP thread pools spin against each
    other there, which a worker thread avoids.)"""
    from concurrent.futures import ThreadPoolExecutor

    from retrieval.retriever import Retriever

    retriever = Retriever.load(index)
    with ThreadPoolExecutor(1) as worker:
        calls = {"main_thread": lambda q: retriever.search(q, k=10),
                 "worker_thread": lambda q: worker.submit(retriever.search, q, k=10).result()}
        results = {}
        for name, call in calls.items():
            for query in QUERIES:
                call(query)
            seconds = []
            for i in range(repeats):
                started = time.perf_counter()
                call(QUERIES[i % len(QUERIES)])
                seconds.append(time.perf_counter() - started)
            results[name] = _summary(seconds, sum(seconds), 0)
    return results


class Server:
    """``adrecall serve`` in a child process; its URL once it answers."""

    def __init__(self, index: Path, batching: bool) -> None:
        command = [sys.executable, "-m", "adrecall", "serve", str(index), "--port", "0", "--json",
                   "--log-level", "warning", *([] if batching else ["--no-batching"])]
        env = {k: v for k, v in os.environ.items() if k != "ADRECALL_API_KEY"}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"adrecall serve exited with status {self.process.wait()}")
        self.info = json.loads(line)
        self.url: str = self.info["url"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


async def _load(url: str, path: str, bodies: list[dict], concurrency: int, seconds: float,
                warmup: float) -> dict[str, float]:
    """Keep ``concurrency`` requests in flight for ``warmup + seconds``; the statistics of
    those that started after the warm-up."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        begin = time.perf_counter()
        measure_from, stop_at = begin + warmup, begin + warmup + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while (started := time.perf_counter()) < stop_at:
                response = await client.post(path, json=bodies[i % len(bodies)])
                i += concurrency
                if started >= measure_from:
                    latencies.append(time.perf_counter() - started)
                    errors += response.status_code != 200

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - measure_from
    return _summary(latencies, elapsed, errors)


def _summary(seconds: list[float], elapsed: float, errors: int) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"requests": len(seconds), "errors": errors,
            "throughput_rps": round(len(seconds) / elapsed, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def run_server_cells(index: Path, texts: list[str], batching: bool, seconds: float,
                     warmup: float) -> list[dict]:
    """Every endpoint × concurrency cell against one server."""
    server = Server(index, batching)
    cells = []
    try:
        workloads = {"/encode": [{"texts": [t]} for t in texts],
                     "/search": [{"queries": q, "k": 10} for q in QUERIES]}
        for path, bodies in workloads.items():
            model = path.strip("/")
            for concurrency in CONCURRENCY:
                before = _metric_totals(server.url, model)
                stats = asyncio.run(_load(server.url, path, bodies, concurrency, seconds, warmup))
                after = _metric_totals(server.url, model)
                calls = after[1] - before[1]
                stats["texts_per_model_call"] = round((after[0] - before[0]) / calls, 2) if calls else None
                cells.append({"endpoint": path, "batching": batching, "concurrency": concurrency,
                              **stats})
                print(json.dumps(cells[-1]), file=sys.stderr)
    finally:
        server.stop()
    return cells


def _metric_totals(url: str, model: str) -> tuple[float, float]:
    """(items, calls) of ``model``'s calls so far."""
    found = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        for part in found:
            if line.startswith(f'adrecall_batch_items_{part}{{model="{model}"}} '):
                found[part] = float(line.split()[-1])
    return found["sum"], found["count"]


def ratios(cells: list[dict], in_process: dict[str, dict[str, float]]) -> dict[str, float]:
    """The goals' ratios: batching on / off throughput per endpoint and concurrency, and the
    /search p50 at concurrency 1 (batching on, the default) over in-process (the faster of
    main thread and worker thread: the stricter comparison)."""
    def cell(endpoint: str, batching: bool, concurrency: int) -> dict:
        return next(c for c in cells if (c["endpoint"], c["batching"], c["concurrency"])
                    == (endpoint, batching, concurrency))

    out = {}
    for endpoint in ("/encode", "/search"):
        for concurrency in CONCURRENCY:
            on, off = cell(endpoint, True, concurrency), cell(endpoint, False, concurrency)
            out[f"{endpoint} throughput on/off at {concurrency}"] = round(
                on["throughput_rps"] / off["throughput_rps"], 2)
    fastest = min(p["p50_ms"] for p in in_process.values())
    out["/search p50 at 1 / in-process p50"] = round(cell("/search", True, 1)["p50_ms"] / fastest, 2)
    return out


def markdown(report: dict) -> str:
    """The short results page."""
    r = report["ratios"]
    encode32 = r["/encode throughput on/off at 32"]
    search1 = r["/search p50 at 1 / in-process p50"]
    lines = [
        "# adrecall serve: load test on loopback",
        "",
        (f"`python -m benchmarks.service_load --seconds {report['settings']['seconds']:g}`; "
        f"{report['settings']['ads']:,} ads (every third of the sample catalogue), embedded "
        f"MiniLM, {report['machine']['cpus']} CPU cores shared by server and load generator, "
        f"batching on = `--max-batch-size {report['settings']['max_batch_size']} --max-wait-ms "
        f"{report['settings']['max_wait_ms']:g}` (the defaults), off = `--no-batching`. One text "
        "per /encode request, one query per /search request (k 10)."),
        "",
        "| endpoint | batching | concurrency | req/s | p50 ms | p95 ms | p99 ms | texts per model call | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["cells"]:
        lines.append(f"| {c['endpoint']} | {'on' if c['batching'] else 'off'} | {c['concurrency']} "
                     f"| {c['throughput_rps']:.1f} | {c['p50_ms']:.1f} | {c['p95_ms']:.1f} "
                     f"| {c['p99_ms']:.1f} | {c['texts_per_model_call']} | {c['errors']} |")
    for name, ip in report["in_process_search"].items():
        lines.append(f"| in-process `Retriever.search`, {name.replace('_', ' ')} | — | 1 "
                     f"| {ip['throughput_rps']:.1f} | {ip['p50_ms']:.1f} | {ip['p95_ms']:.1f} "
                     f"| {ip['p99_ms']:.1f} | 1 | 0 |")
    lines += [
        "",
        "| ratio | value | goal |",
        "|---|---:|---|",
    ]
    for name, value in r.items():
        goal = ""
        if name == "/encode throughput on/off at 32":
            goal = f">= 3: {'met' if encode32 >= 3 else 'not met'}"
        elif name.startswith("/search p50"):
            goal = f"<= 1.5: {'met' if search1 <= 1.5 else 'not met'}"
        lines.append(f"| {name} | {value:.2f} | {goal} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/adrecall-service-load"))
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--repeats", type=int, default=200, help="in-process searches timed")
    args = parser.parse_args(argv)
    from service.batching import BatchSettings

    index, texts = build(args.work_dir)
    in_process = in_process_search(index, args.repeats)
    print(json.dumps({"in_process_search": in_process}), file=sys.stderr)
    cells = [cell for batching in (True, False)
             for cell in run_server_cells(index, texts, batching, args.seconds, args.warmup)]
    import torch

    defaults = BatchSettings()
    report = {
        "settings": {"seconds": args.seconds, "warmup": args.warmup, "ads": len(texts),
                     "max_batch_size": defaults.max_batch_size,
                     "max_wait_ms": defaults.max_wait_ms, "concurrency": list(CONCURRENCY)},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "in_process_search": in_process,
        "cells": cells,
        "ratios": ratios(cells, in_process),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "service_load.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS_DIR / "service_load.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
