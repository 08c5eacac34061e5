"""The BertSim recipe sweep: encoder learning rate × pooling, dev metric by step, test of the
best step, one run at a time.

For each (learning rate, pooling) a BertSim is trained from ``--model`` on the task's train
split (data and test metrics as in :mod:`benchmarks.rerank_real`), evaluated on dev every
``--eval-every`` steps with early stopping (``--patience``), and the best step's model scored
on the test split. ``max_length`` comes from the data (the training default) and precision is
bf16. Each finished run is kept under ``--work-dir`` and not retrained when the command runs
again, so a long sweep can be stopped and continued; a killed run resumes from its checkpoint.

Results: ``benchmarks/results/rerank_sweep_<task>.json``, ``.md`` and ``.png`` (dev metric by
step, one line per run).

    python -m benchmarks.rerank_sweep --task stsb --lrs 2e-5 5e-5 1e-4 --poolings mean
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.rerank_real import (
    RESULTS_DIR,
    TASKS,
    _datasets_root,
    _metrics,
    bi_encoder_reference,
    load_task,
)


def run_one(task: str, data: dict, lr: float, pooling: str, args: argparse.Namespace) -> dict:
    """Train (or reuse) one sweep point and score its best model on the test split."""
    from rerank import BertSim, PairFormat, TrainConfig, pairs_from_lists, train_reranker
    from rerank.scoring import score_pairs

    fmt = PairFormat(label_min=0.0, label_max=data["label_max"])
    pairs = {
        split: pairs_from_lists(*data["splits"][split], fmt, role=split, source=data["files"][split])
        for split in ("train", "dev", "test")
    }
    out_dir = Path(args.work_dir) / task / f"lr{lr:g}-{pooling}"
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, max_length=None,
        encoder_lr=lr, pooling=pooling, precision="bf16", seed=args.seed,
        eval_every=args.eval_every, patience=args.patience, progress=not args.quiet,
        checkpoint_every=args.eval_every,
    )
    manifest_path = out_dir / "manifest.json"
    finished = manifest_path.is_file() and json.loads(manifest_path.read_text())["training"].get(
        "finished"
    )
    if not finished:
        train_reranker(pairs["train"], out_dir, model=args.model, dev=pairs["dev"], config=config,
                       pair_format=fmt)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    training = manifest["training"]
    model = BertSim.load(out_dir, backend="torch-bf16")
    start = time.perf_counter()
    scores = score_pairs(model, pairs["test"].queries, pairs["test"].texts, checked=True)
    score_seconds = time.perf_counter() - start
    dev_scores = score_pairs(model, pairs["dev"].queries, pairs["dev"].texts, checked=True)
    fused = cosine_fusion(task, pairs, {"dev": dev_scores, "test": scores}, args.model)
    return {
        "lr": lr,
        "pooling": manifest["encoder"]["pooling"],
        "max_length": manifest["max_length"],
        "best_epoch": training["best_epoch"],
        "best_step": training.get("best_step"),
        "stopped_early": training.get("stopped_early"),
        "steps": training["steps"],
        "train_wall_seconds": training["wall_seconds"],
        "dev_history": training["history"],
        "dev_best": training["history"][
            [r["step"] for r in training["history"]].index(training.get("best_step"))
        ] if training.get("best_step") else None,
        "test": _metrics(task, pairs["test"].queries, scores, pairs["test"].labels),
        "test_pairs_per_second": round(len(pairs["test"]) / score_seconds, 1),
        "fused_with_bi_encoder_cosine": fused,
        "model_dir": str(out_dir),
    }


_COSINES: dict[tuple[str, str], np.ndarray] = {}


def cosine_fusion(task: str, pairs: dict, bertsim: dict, model: str) -> dict:
    """BertSim fused with the untrained bi-encoder's cosine (:func:`adrecall.score_fusion.fuse`),
    the weight chosen on dev Spearman and applied to test. STS-B has one pair per "query", so
    its pairs are fused as one list; QBQTC within each query, as the retriever does."""
    from adrecall.score_fusion import choose_weight, fuse_by_query
    from rerank.metrics import evaluate_scores

    def groups(split: str) -> list[str]:
        return ["all"] * len(pairs[split]) if task == "stsb" else list(pairs[split].queries)

    cosine = {}
    for split in ("dev", "test"):
        if (task, split) not in _COSINES:
            _COSINES[task, split] = bi_encoder_reference(
                model, list(pairs[split].queries), list(pairs[split].texts))
        cosine[split] = _COSINES[task, split]
    dev = pairs["dev"]

    def dev_spearman(scores: np.ndarray) -> float:
        return float(evaluate_scores(dev.queries, scores, dev.labels)["spearman"])

    weight, _ = choose_weight(groups("dev"), cosine["dev"], bertsim["dev"], dev_spearman)
    test = pairs["test"]
    fused = fuse_by_query(groups("test"), cosine["test"], bertsim["test"], weight)
    return {
        "weight_of_cosine": weight,
        "chosen_on": "dev Spearman",
        "test": _metrics(task, list(test.queries), fused, test.labels),
        "test_cosine_alone": _metrics(task, list(test.queries), cosine["test"], test.labels),
    }


def markdown(report: dict) -> str:
    """A table of the sweep, best test metric first."""
    metric = "spearman"
    lines = [
        f"# BertSim recipe sweep: {report['task']}",
        "",
        f"- command: `{report['command']}`",
        (
            f"- date: {report['date']}; model: {report['model']}; bf16 autocast; batch "
            f"{report['batch_size']}; max_length from the data; dev every "
            f"{report['eval_every']} steps, early stop after {report['patience']} evaluations "
            f"without improvement; at most {report['epochs']} epochs."
        ),
        (
            "- Wall times are this shared 2-core machine's, with other jobs at times: read them "
            "as what a run took, not as clean speed."
        ),
        "",
        (
            "| encoder lr | pooling | max_length | best step (epoch) | steps run | dev Spearman | "
            "test Spearman | test nDCG@10 | fused with cosine: weight, test Spearman | train s |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for run in sorted(report["runs"], key=lambda r: -r["test"][metric]):
        best = run["dev_best"] or {}
        lines.append(
            f"| {run['lr']:g} | {run['pooling']} | {run['max_length']} | {run['best_step']} "
            f"({run['best_epoch']}) | {run['steps']} | {best.get(metric, float('nan')):.4f} | "
            f"{run['test'][metric]:.4f} | {run['test'].get('ndcg@10', float('nan')):.4f} | "
            f"{_fused_cell(run)} | {run['train_wall_seconds']:.0f} |"
        )
    fused = [r["fused_with_bi_encoder_cosine"] for r in report["runs"]
             if r.get("fused_with_bi_encoder_cosine")]
    if fused:
        lines += ["", (
            f"The untrained bi-encoder's cosine alone: test Spearman "
            f"{fused[0]['test_cosine_alone']['spearman']:.4f}. \"Fused with cosine\" is "
            "`adrecall.score_fusion.fuse` of that cosine and BertSim's score, its weight chosen "
            "on dev Spearman" + (" (STS-B's pairs fused as one list)." if report["task"] == "stsb"
                                 else " (within each query).")
        )]
    return "\n".join(lines) + "\n"


def _fused_cell(run: dict) -> str:
    fused = run.get("fused_with_bi_encoder_cosine")
    if not fused:
        return "not measured"
    return f"{fused['weight_of_cosine']:g}, {fused['test']['spearman']:.4f}"


def plot(report: dict, path: Path) -> None:
    """Dev Spearman by step, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in report["runs"]:
        history = run["dev_history"]
        ax.plot([r["step"] for r in history], [r["spearman"] for r in history], marker="o",
                markersize=3, label=f"lr {run['lr']:g}, {run['pooling']}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("dev Spearman")
    ax.set_title(f"BertSim on {report['task']}: dev metric by step")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASKS, default="stsb")
    parser.add_argument("--model", default="default")
    parser.add_argument("--lrs", type=float, nargs="+", default=[2e-5, 5e-5, 1e-4])
    parser.add_argument("--poolings", nargs="+", default=["mean"],
                        choices=("mean", "cls", "pooler"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=60)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--work-dir", default="/tmp/adrecall-rerank-sweep")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = load_task(args.task, _datasets_root())
    if data is None:
        return 0
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    json_path = results / f"rerank_sweep_{args.task}.json"
    report = json.loads(json_path.read_text()) if json_path.is_file() else {"runs": []}
    report.update(
        task=args.task, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        eval_every=args.eval_every, patience=args.patience,
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command="python -m benchmarks.rerank_sweep " + " ".join(argv or __import__("sys").argv[1:]),
    )
    for pooling in args.poolings:
        for lr in args.lrs:
            run = run_one(args.task, data, lr, pooling, args)
            report["runs"] = [r for r in report["runs"]
                              if (r["lr"], r["pooling"]) != (run["lr"], run["pooling"])] + [run]
            json_path.write_text(json.dumps(report, indent=2) + "\n")
            (results / f"rerank_sweep_{args.task}.md").write_text(markdown(report))
            plot(report, results / f"rerank_sweep_{args.task}.png")
            print(f"lr {lr:g} {pooling}: test {run['test']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
