"""The recommended sequence for a new language or domain, run on QBQTC with the CLI, timed.

Steps, each an ``adrecall`` command exactly as the README shows it (each resumable, each
skipped when this run already finished it):

1. ``extend-vocab`` on the training texts (v1 train + dev queries and titles, no test text);
2. ``train-encoder`` on the 15,000 v1 train pairs (dev: v1 dev), from the extended model;
3. ``build`` an index of all 17,710 v1 titles with the fine-tuned encoder;
4. ``train-reranker`` from the fine-tuned encoder with negatives mined from that index
   (and, as comparisons, without mined negatives, and from the default MiniLM);
5. ``eval`` on the pooled set with the 91 test_public queries only (``qbqtc-v1-pooled-test``)
   for each first stage (the fine-tuned encoder's index; one built with the default MiniLM as
   a weak first stage; the fine-tuned index with its lexical side, searched in hybrid mode):
   alone, and with its top 100 reranked by rerank score and by the weighted fusion whose weight
   was chosen on dev.

Results of earlier runs are kept: a run with other ``--rerankers`` adds its rows.

Beside the retrieval run, each BertSim is scored on held-out pairs: v1 test_public candidates
(Spearman, nDCG@10 per query) and QBQTC final/dev (20,000 pairs over 18,802 queries, so scores
must compare across queries), next to the fine-tuned bi-encoder's cosine on the same pairs.

Results: ``benchmarks/results/rerank_pipeline.{json,md}``. Work files go to ``--work-dir``.

    python -m benchmarks.rerank_pipeline --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adrecall.backends import torch_backend
from benchmarks.rerank_real import RESULTS_DIR, read_qbqtc_split

RERANKERS = {
    # name: (start model step, extra train-reranker options)
    "bertsim-finetuned-mined": ("encoder", ["--index", "{idx}", "--mined-negatives", "4",
                                            "--random-negatives", "1"]),
    "bertsim-finetuned": ("encoder", ["--index", "{idx}"]),
    "bertsim-default-mined": ("default", ["--index", "{idx}", "--mined-negatives", "4",
                                          "--random-negatives", "1"]),
}


def prepare_data(root: Path, work: Path) -> dict[str, Path]:
    """Pairs tables, the extension corpus, the ad table and the test-only pooled eval set."""
    from benchmarks.datasets import load_eval_dataset

    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    v1 = root / "qbqtc" / "v1"
    files = {}
    texts: list[str] = []
    for split in ("train", "dev"):
        queries, titles, labels = read_qbqtc_split(v1 / f"{split}.json")
        path = files[split] = data / f"{split}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["query", "text", "label"])
            writer.writerows(zip(queries, titles, [int(y) for y in labels]))
        texts += queries + titles
    files["corpus"] = data / "corpus.txt"
    files["corpus"].write_text(
        "\n".join(t.replace("\n", " ") for t in dict.fromkeys(texts) if t.strip()) + "\n",
        encoding="utf-8",
    )
    pooled = load_eval_dataset("qbqtc-v1-pooled-test")
    files["ads"] = data / "ads.csv"
    with open(files["ads"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ad_id", "text"])
        writer.writerows(pooled.corpus.items())
    from benchmarks.datasets import cache_root

    files["eval"] = cache_root() / "qbqtc-v1-pooled-test"
    return files


def adrecall(step: str, args: list[str], work: Path, threads: int | None) -> float:
    """Run one ``adrecall`` command (skipped when this run finished it before); its seconds."""
    done = work / "steps" / f"{step}.json"
    if done.is_file():
        return float(json.loads(done.read_text())["seconds"])
    done.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "adrecall", *args]
    env = None
    if threads:
        import os

        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    print("$ adrecall " + " ".join(args), flush=True)
    start = time.perf_counter()
    with open(work / "steps" / f"{step}.log", "a", encoding="utf-8") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    done.write_text(json.dumps({"seconds": round(seconds, 1), "command": "adrecall " +
                                " ".join(args)}))
    return seconds


def pair_metrics(model_dir: Path, encoder_dir: Path, root: Path) -> dict:
    """BertSim, the fine-tuned bi-encoder and their dev-weighted fusion on held-out pairs."""
    from adrecall.score_fusion import fuse_by_query
    from rerank import BertSim
    from rerank.metrics import evaluate_scores
    from rerank.scoring import score_pairs
    from retrieval.encoder import Encoder

    model = BertSim.load(model_dir, backend="torch-bf16")
    encoder = Encoder(encoder_dir)
    out = {}
    for name, path, key in (("v1 test_public", root / "qbqtc/v1/test_public.json", "relevant"),
                            ("final dev", root / "qbqtc/final/dev.json", "label")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        queries = [str(r["query"]).strip() for r in rows]
        titles = [str(r["title"]).strip() for r in rows]
        labels = np.array([float(r[key]) for r in rows], dtype=np.float32)
        rerank = score_pairs(model, queries, titles, checked=True)
        cosine = np.einsum("ij,ij->i", encoder.encode(queries), encoder.encode(titles))
        entry = {"pairs": len(rows), "queries": len(set(queries))}
        for system, scores in (("bertsim", rerank), ("bi-encoder", cosine)):
            metrics = evaluate_scores(queries, scores, labels)
            entry[system] = {k: round(float(metrics[k]), 4) for k in ("spearman", "ndcg@10")}
        # fused scores order one query's candidates; they do not compare across queries, so
        # they mean nothing on final dev (one title per query)
        if model.fusion_weight is not None and len(rows) >= 2 * len(set(queries)):
            fused = fuse_by_query(queries, cosine, rerank, model.fusion_weight)
            metrics = evaluate_scores(queries, fused, labels)
            entry["fused"] = {k: round(float(metrics[k]), 4) for k in ("spearman", "ndcg@10")}
        out[name] = entry
    return out


def rerank_cost(model_dir: Path, files: dict[str, Path], repeats: int = 15) -> dict:
    """Milliseconds to rerank 20 and 100 candidates of one query (median over ``repeats``
    queries, after a warm-up), bf16 and fp32, on the titles of the ad table."""
    from rerank import BertSim

    with open(files["ads"], encoding="utf-8") as handle:
        titles = [row["text"] for row in csv.DictReader(handle)]
    with open(files["dev"], encoding="utf-8") as handle:
        queries = list(dict.fromkeys(row["query"] for row in csv.DictReader(handle)))[:repeats]
    cost: dict[str, float] = {}
    for precision in ("bf16", "fp32"):
        model = BertSim.load(model_dir, backend=torch_backend(precision))
        model.score(queries[0], titles[:100])  # warm-up
        for depth in (20, 100):
            times = []
            for i, query in enumerate(queries):
                start = time.perf_counter()
                model.score(query, titles[i * depth:(i + 1) * depth])
                times.append(time.perf_counter() - start)
            cost[f"{precision} top {depth} ms"] = round(1000 * float(np.median(times)), 1)
    return cost


FIRST_STAGES = {
    # label: (index folder under the work dir, model it is built with, build and eval options)
    "fine-tuned dense": ("idx", "encoder", [], []),
    "default dense": ("idx-default", "default", [], []),
    "fine-tuned hybrid (RRF, w 0.5)": ("idx-lexical", "encoder", ["--lexical"],
                                       ["--mode", "hybrid"]),
}


def retrieval_runs(
    name: str, first_stage: str, work: Path, files: dict[str, Path], threads: int | None
) -> dict:
    """``adrecall eval`` of one first stage alone (``name`` empty) or with reranker ``name``
    reranking its top 100, by rerank score and by the dev-weighted fusion."""
    folder, _, _, mode = FIRST_STAGES[first_stage]
    idx, results = work / folder, {}
    # eval searches at least 100 deep (MAP@100) and the retriever reranks all it fetches, so
    # eval measures reranking the top 100; rerank_cost times the top 20 as well
    runs = {first_stage: []} if not name else {
        f"{first_stage} → {name} top 100 {fusion}": [
            "--reranker", str(work / name), "--candidates", "100", "--fusion", fusion]
        for fusion in ("rerank", "weighted")}
    for label, extra in runs.items():
        slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in label.replace(" → ", "_"))
        out = work / "eval" / f"{slug}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        seconds = adrecall(f"eval-{slug}", [
            "eval", str(idx), "--queries", str(files["eval"] / "queries.jsonl"),
            "--qrels", str(files["eval"] / "qrels.tsv"), "--cutoffs", "10,100", "--json-file", str(out),
            *mode, *extra], work, threads)
        report = json.loads(out.read_text(encoding="utf-8"))
        results[label] = {"metrics": report["metrics"], "seconds": round(seconds, 1),
                          "queries": report.get("n_queries")}
    return results


def markdown(report: dict) -> str:
    lines = [("# A new language end to end: QBQTC with extend-vocab → train-encoder → build → "
              "train-reranker → eval"), "",
             f"- command: `{report['command']}`; date {report['date']}",
             "- Wall times on this shared 2-core machine; step times include model loading.",
             "", "| step | seconds |", "|---|---:|"]
    lines += [f"| {step} | {seconds:.0f} |" for step, seconds in report["steps"].items()]
    lines += ["", "## Held-out pairs (Spearman / nDCG@10)", "",
              "| reranker | set | BertSim | fine-tuned bi-encoder | fused (dev weight) |",
              "|---|---|---|---|---|"]
    for name, sets in report["pairs"].items():
        for set_name, e in sets.items():
            cell = lambda m: f"{m['spearman']:.3f} / {m['ndcg@10']:.3f}" if m else "n/a"
            lines.append(f"| {name} | {set_name} ({e['queries']} queries) | {cell(e['bertsim'])} "
                         f"| {cell(e['bi-encoder'])} | {cell(e.get('fused'))} |")
    lines += ["", "## Cost of reranking one query (ms, median)", ""]
    lines += [f"- {name}: " + ", ".join(f"{k} {v}" for k, v in cost.items())
              for name, cost in report.get("rerank_cost", {}).items()]
    lines += ["", "## Pooled retrieval, test_public queries (17,710 titles)", "",
              "| system | recall@10 | recall@100 | nDCG@10 | MRR@10 | seconds |",
              "|---|---:|---:|---:|---:|---:|"]
    for label, run in report["retrieval"].items():
        m = run["metrics"]
        cells = " | ".join(_cell(m.get(key)) for key in
                           ("recall@10", "recall@100", "ndcg@10", "mrr@10"))
        lines.append(f"| {label} | {cells} | {run['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.datasets import datasets_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", default="/tmp/adrecall-rerank-pipeline")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    parser.add_argument("--threads", type=int)
    parser.add_argument("--rerankers", nargs="+", choices=sorted(RERANKERS),
                        default=list(RERANKERS))
    parser.add_argument("--reranker-epochs", type=int, default=2)
    args = parser.parse_args(argv)
    root = datasets_root()
    if not (root / "qbqtc" / "v1" / "train.json").is_file():
        print(f"QBQTC not found under {root}; set ADRECALL_DATASETS", file=sys.stderr)
        return 0
    work = Path(args.work_dir)
    files = prepare_data(root, work)
    steps = {
        "extend-vocab": adrecall("extend-vocab", [
            "extend-vocab", "--texts", str(files["corpus"]), "--out", str(work / "ext")],
            work, args.threads),
        "train-encoder": adrecall("train-encoder", [
            "train-encoder", "--train", str(files["train"]), "--dev", str(files["dev"]),
            "--model", str(work / "ext"), "--out", str(work / "encoder"), "--precision", "bf16", "--quiet"],
            work, args.threads),
    }
    for label, (folder, model, build_options, _) in FIRST_STAGES.items():
        step = "build" if folder == "idx" else f"build ({label})"
        steps[step] = adrecall("build" if folder == "idx" else f"build-{folder}", [
            "build", "--ads", str(files["ads"]), "--model",
            "default" if model == "default" else str(work / model), "--out", str(work / folder),
            *build_options], work, args.threads)
    results = Path(args.results_dir)
    json_path = results / "rerank_pipeline.json"
    report = json.loads(json_path.read_text()) if json_path.is_file() else {}
    report.setdefault("pairs", {})
    report.setdefault("retrieval", {})
    report["steps"] = {**report.get("steps", {}), **steps}
    report.update(command="python -m benchmarks.rerank_pipeline " + " ".join(argv or sys.argv[1:]),
                  date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    for first_stage in FIRST_STAGES:
        report["retrieval"].update(retrieval_runs("", first_stage, work, files, args.threads))
    for name in args.rerankers:
        start, extra = RERANKERS[name]
        model = "default" if start == "default" else str(work / "encoder")
        steps[f"train-reranker ({name})"] = adrecall(f"train-reranker-{name}", [
            "train-reranker", "--train", str(files["train"]), "--dev", str(files["dev"]),
            "--model", model, "--out", str(work / name), "--precision", "bf16",
            "--epochs", str(args.reranker_epochs), "--quiet",
            *[e.format(idx=work / "idx") for e in extra]], work, args.threads)
        report["steps"].update(steps)
        report["pairs"][name] = pair_metrics(work / name, work / "encoder", root)
        report.setdefault("rerank_cost", {})[name] = rerank_cost(work / name, files)
        for first_stage in FIRST_STAGES:
            report["retrieval"].update(
                retrieval_runs(name, first_stage, work, files, args.threads))
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        (results / "rerank_pipeline.md").write_text(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
