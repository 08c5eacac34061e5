"""BertSim on real data: train from the embedded MiniLM-L6, evaluate on held-out splits.

Tasks (data read from ``$ADRECALL_DATASETS``, default ``../shared/datasets``; never copied):

* ``qbqtc``: QBQTC v1 (Chinese query → title, labels 0/1/2). Train on ``train.json`` (15,000
  pairs), pick the best epoch on ``dev.json``, report ``test_public.json`` (1,743 pairs, 91
  queries): Spearman of scores against labels and mean nDCG@10 per query (linear gains).
* ``stsb``: STS Benchmark English (0–5, mapped onto 0–2 as label × 0.4). Train on sts-train,
  best epoch on sts-dev, report Spearman on sts-test.

Each task also reports two zero-training references: cosine similarity of the same MiniLM used
as a bi-encoder (sentence-transformers, mean pooling), and BM25 (``retrieval.lexical_index``: bm25s,
jieba tokens for Chinese). BM25 scores each test pair as query → text against an index whose
IDF comes from a whole corpus: for QBQTC the unique titles of all three v1 splits (language
"zh"), for STS-B the unique sentences (both sides) of all three splits (language "en"; the
score is sentence1 as query against sentence2). Note that MiniLM's vocabulary holds only
244 CJK characters, so on QBQTC most Chinese characters become [UNK]: the numbers measure the
recipe, not what a Chinese encoder would reach (pass ``--model`` a local Chinese BERT for that).

Results: ``benchmarks/results/rerank_real.json`` and ``.md`` (a task run alone keeps the other
task's previous entry). Trained models go to ``--work-dir`` (default under /tmp), never into
the repository; a killed run resumes when the same command is run again without
``--overwrite``, and ``--skip-training`` evaluates whatever model a run has kept so far. A
missing data set is skipped with a message.

    nice -n 10 python -m benchmarks.rerank_real --epochs 2 --max-length 64 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adrecall.backends import torch_backend

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TASKS = ("qbqtc", "stsb")


# ---------------------------------------------------------------- data
def _datasets_root() -> Path:
    from benchmarks.datasets import datasets_root

    return datasets_root()


def read_qbqtc_split(path: Path) -> tuple[list[str], list[str], list[float]]:
    """QBQTC v1 ``<split>.json`` (JSON lines; keys query, title, relevant as "0"/"1"/"2")."""
    queries, titles, labels = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                queries.append(str(row["query"]).strip())
                titles.append(str(row["title"]).strip())
                labels.append(float(row["relevant"]))
            except KeyError as exc:
                raise ValueError(f"{path}: line {line_no} lacks key {exc}") from exc
    return queries, titles, labels


def read_stsb_split(path: Path) -> tuple[list[str], list[str], list[float]]:
    """STS-B ``sts-<split>.csv``: tab-separated, no header, quotes are text (split on tabs
    only); field 4 is the 0–5 score, fields 5 and 6 the sentences, extra fields ignored."""
    first, second, scores = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                raise ValueError(f"{path}: line {line_no} has {len(fields)} fields, expected >= 7")
            scores.append(float(fields[4]))
            first.append(fields[5].strip())
            second.append(fields[6].strip())
    return first, second, scores


def load_task(task: str, root: Path) -> dict | None:
    """``{"splits": {train/dev/test: (q, t, y)}, "label_max", "files"}``; None if absent."""
    if task == "qbqtc":
        folder = root / "qbqtc" / "v1"
        files = {"train": "train.json", "dev": "dev.json", "test": "test_public.json"}
        reader, label_max = read_qbqtc_split, 2.0
    else:
        folder = root / "stsb_en"
        files = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}
        reader, label_max = read_stsb_split, 5.0
    paths = {split: folder / name for split, name in files.items()}
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        print(f"{task}: skipped, data not found ({absent}); set ADRECALL_DATASETS", file=sys.stderr)
        return None
    return {
        "splits": {split: reader(p) for split, p in paths.items()},
        "label_max": label_max,
        "files": {split: str(p) for split, p in paths.items()},
    }


def _limit(split: tuple, n: int | None) -> tuple:
    return split if n is None else tuple(list(part)[:n] for part in split)


# ---------------------------------------------------------------- evaluation
def bi_encoder_reference(model: str, queries: list[str], texts: list[str]) -> np.ndarray:
    """Cosine of the untrained bi-encoder (mean-pooled, normalised), the no-training peer."""
    from sentence_transformers import SentenceTransformer

    from adrecall.models import resolve_model_dir

    encoder = SentenceTransformer(str(resolve_model_dir(model)), device="cpu")
    unique = sorted(set(queries) | set(texts))
    vectors = encoder.encode(unique, batch_size=128, normalize_embeddings=True)
    index = {text: i for i, text in enumerate(unique)}
    q = vectors[[index[x] for x in queries]]
    t = vectors[[index[x] for x in texts]]
    return np.einsum("ij,ij->i", q, t).astype(np.float32)


def bm25_reference(
    queries: list[str], texts: list[str], corpus: list[str], language: str
) -> tuple[np.ndarray, str]:
    """BM25 of each ``(query, text)`` pair, every ``text`` a document of an index over
    ``corpus`` (deduplicated, order kept; the texts are added if missing). Returns the scores
    and a line describing the index."""
    from retrieval.lexical_index import LexicalIndex

    docs = list(dict.fromkeys([*corpus, *texts]))
    position = {doc: i for i, doc in enumerate(docs)}
    index = LexicalIndex.build(docs, language=language)
    cache: dict[str, np.ndarray] = {}
    scores = np.empty(len(queries), dtype=np.float32)
    for i, (query, text) in enumerate(zip(queries, texts, strict=True)):
        if query not in cache:
            cache[query] = index.scores(query)
        scores[i] = cache[query][position[text]]
    return scores, f"{index.describe()}; corpus {len(docs)} unique docs"


def _bm25_corpus(task: str, data: dict) -> list[str]:
    """QBQTC: the titles of all v1 splits; STS-B: both sentences of all splits."""
    corpus: list[str] = []
    for split in ("train", "dev", "test"):
        first, second, _ = data["splits"][split]
        corpus += list(second) if task == "qbqtc" else [*first, *second]
    return corpus


def _metrics(task: str, queries: list[str], scores: np.ndarray, labels: np.ndarray) -> dict:
    from rerank.metrics import evaluate_scores

    metrics = evaluate_scores(queries, scores, labels)
    if task == "stsb":  # one pair per "query": nDCG is meaningless there
        metrics = {k: v for k, v in metrics.items() if not k.startswith("ndcg")}
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}


def run_task(task: str, data: dict, args: argparse.Namespace) -> dict:
    """Train BertSim for one task and evaluate it on the test split."""
    from rerank import BertSim, PairFormat, TrainConfig, pairs_from_lists, train_reranker
    from rerank.scoring import score_pairs

    fmt = PairFormat(label_min=0.0, label_max=data["label_max"])
    train = _limit(data["splits"]["train"], args.limit_train)
    dev = _limit(data["splits"]["dev"], args.limit_eval)
    test = _limit(data["splits"]["test"], args.limit_eval)
    train_pairs = pairs_from_lists(*train, fmt, role="train", source=data["files"]["train"])
    dev_pairs = pairs_from_lists(*dev, fmt, role="dev", source=data["files"]["dev"])
    test_pairs = pairs_from_lists(*test, fmt, role="test", source=data["files"]["test"])
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length,
        precision=args.precision, seed=args.seed,
        progress=not args.quiet, overwrite=args.overwrite, checkpoint_every=200,
    )
    out_dir = Path(args.work_dir) / task
    if args.skip_training:  # evaluate the model a previous (maybe interrupted) run kept
        if not (out_dir / "manifest.json").is_file():
            raise FileNotFoundError(f"{out_dir} holds no trained model; run without --skip-training")
    else:
        train_reranker(train_pairs, out_dir, model=args.model, dev=dev_pairs, config=config,
                       pair_format=fmt)

    model = BertSim.load(out_dir, backend=torch_backend(args.precision))
    score_pairs(model, test_pairs.queries[:32], test_pairs.texts[:32], checked=True)  # warm-up
    start = time.perf_counter()
    scores = score_pairs(model, test_pairs.queries, test_pairs.texts, checked=True)
    score_seconds = time.perf_counter() - start
    reference = bi_encoder_reference(args.model, test_pairs.queries, test_pairs.texts)
    bm25_scores, bm25_index = bm25_reference(
        test_pairs.queries, test_pairs.texts, _bm25_corpus(task, data),
        "zh" if task == "qbqtc" else "en",
    )
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    training = manifest["training"]
    epochs_run = len(training["history"])
    wall = training.get("wall_seconds")  # written when the run finished
    wall_so_far = None
    state_path = out_dir / "checkpoint" / "trainer_state.json"
    if wall is None and state_path.is_file():  # an interrupted run: time spent up to its checkpoint
        saved = json.loads(state_path.read_text(encoding="utf-8"))
        wall_so_far = {"seconds": round(saved["wall_seconds"], 1), "steps": saved["global_step"],
                       "epochs_completed": saved["epoch"]}
    return {
        "task": task,
        "data": {split: data["files"][split] for split in ("train", "dev", "test")},
        "rows": {"train": len(train_pairs), "dev": len(dev_pairs), "test": len(test_pairs)},
        "limited": args.limit_train is not None or args.limit_eval is not None,
        "label_scale": f"0..{data['label_max']:g} mapped onto 0..2",
        "settings": {
            "model": args.model, "epochs": training["config"]["epochs"], "batch_size": args.batch_size,
            "max_length": args.max_length, "precision": args.precision, "seed": args.seed,
            "encoder_lr": config.encoder_lr, "head_lr": config.head_lr,
            "pooling": manifest["encoder"]["pooling"],
        },
        "training_finished": bool(training.get("finished")),
        "epochs_run": epochs_run,
        "train_wall_seconds": round(wall, 1) if wall else None,
        "train_pairs_per_second": (
            round(len(train_pairs) * epochs_run / wall, 1) if wall else None
        ),
        "train_wall_until_checkpoint": wall_so_far,
        "best_epoch": training["best_epoch"],
        "dev_history": training["history"],
        "test": _metrics(task, test_pairs.queries, scores, test_pairs.labels),
        "test_scoring_pairs_per_second": round(len(test_pairs) / score_seconds, 1),
        "reference_bi_encoder_cosine": {  # cosine is not on the 0–2 scale: no MSE
            k: v for k, v in _metrics(task, test_pairs.queries, reference, test_pairs.labels).items()
            if k != "mse"
        },
        "reference_bm25": {  # BM25 is not on the 0–2 scale either
            k: v for k, v in _metrics(task, test_pairs.queries, bm25_scores, test_pairs.labels).items()
            if k != "mse"
        },
        "reference_bm25_index": bm25_index,
        "model_dir": str(out_dir),
    }


# ---------------------------------------------------------------- report
def markdown(report: dict) -> str:
    """A short human-readable table of the report."""
    lines = [
        "# BertSim (cross-encoder) on real data",
        "",
        f"- command: `{report['stamp']['command']}`",
        (
            f"- date: {report['stamp']['date']}; git: {report['stamp']['git']}; machine: "
            f"{report['stamp']['machine']}"
        ),
        (
            "- Spearman of scores against graded labels on the held-out test split; nDCG@10 is "
            "the mean over queries with a relevant candidate (linear gains). References (no "
            "training): cosine of the same MiniLM as an untrained bi-encoder, and BM25 of each "
            "pair (query → text; IDF from the unique titles of all QBQTC v1 splits, or all "
            "STS-B sentences; sentence1 → sentence2). Train seconds include the dev "
            "evaluation after each epoch."
        ),
        (
            "- MiniLM-L6's vocabulary holds only 244 CJK characters: on QBQTC most Chinese "
            "text becomes [UNK]."
        ),
        (
            "- Timings are wall times on the machine named above, which may be shared with "
            "other jobs: read them as what this run took, not as clean speed measurements "
            "(a resumed run's time adds up the time of each part)."
        ),
        "",
        (
            "| task | test rows | epochs run/planned (best) | Spearman | nDCG@10 | MSE (0–2) | cosine "
            "Spearman | cosine nDCG@10 | BM25 Spearman | BM25 nDCG@10 | train s | train pairs/s | "
            "score pairs/s |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task in TASKS:
        r = report["tasks"].get(task)
        if r is None:
            continue
        t, ref = r["test"], r["reference_bi_encoder_cosine"]
        bm25 = r.get("reference_bm25", {})  # absent from entries written before BM25 was added
        lines.append(
            f"| {task}{' (limited)' if r['limited'] else ''}"
            f"{'' if r['training_finished'] else ' (training interrupted)'} | {r['rows']['test']} | "
            f"{r['epochs_run']}/{r['settings']['epochs']} ({r['best_epoch']}) | {t['spearman']:.4f} | "
            f"{_num(t.get('ndcg@10'), 4)} | {t['mse']:.4f} | {ref['spearman']:.4f} | "
            f"{_num(ref.get('ndcg@10'), 4)} | {_num(bm25.get('spearman'), 4)} | "
            f"{_num(bm25.get('ndcg@10'), 4)} | {_num(r['train_wall_seconds'], 0)} | "
            f"{_num(r['train_pairs_per_second'], 1)} | {r['test_scoring_pairs_per_second']:.1f} |"
        )
    for task, r in report["tasks"].items():
        so_far = r.get("train_wall_until_checkpoint")
        if so_far:
            lines.append(
                f"\n{task}: training was stopped after {so_far['epochs_completed']} epoch(s) "
                f"({so_far['steps']} steps, {so_far['seconds']:.0f} s including dev evaluation); "
                "the best model kept so far was evaluated."
            )
    lines += ["", "Settings per task:", ""]
    for task, r in report["tasks"].items():
        lines.append(
            f"- **{task}** ({r['stamp']['date']}, git {r['stamp']['git']}): "
            f"{json.dumps(r['settings'])}; label scale {r['label_scale']}"
            + (f"; BM25: {r['reference_bm25_index']}" if r.get("reference_bm25_index") else "")
            + (
                f"; evaluated with --skip-training, model trained by `{r['training_stamp']['command']}` "
                f"({r['training_stamp']['date']}, git {r['training_stamp']['git']})"
                if r.get("training_stamp") else ""
            )
        )
    return "\n".join(lines) + "\n"


def _same_model(previous: dict, entry: dict) -> bool:
    """Whether a report entry describes the same trained model as a fresh evaluation."""
    keys = ("model_dir", "train_wall_seconds", "train_wall_until_checkpoint", "dev_history")
    return all(previous.get(k) == entry.get(k) for k in keys)


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--model", default="default", help="encoder ('default' or a local dir)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit-train", type=int, help="use only the first N training pairs")
    parser.add_argument("--limit-eval", type=int, help="use only the first N dev/test pairs")
    parser.add_argument("--work-dir", default="/tmp/adrecall-rerank-real",
                        help="where trained models go (resumes a killed run)")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    parser.add_argument("--overwrite", action="store_true", help="retrain over earlier models")
    parser.add_argument("--skip-training", action="store_true",
                        help="evaluate the models already in --work-dir (e.g. of a killed run)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from benchmarks.eval_run import stamp

    root = _datasets_root()
    results_dir = Path(args.results_dir)
    json_path = results_dir / "rerank_real.json"
    report = {"tasks": {}}
    if json_path.is_file():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    argv_text = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    command = f"python -m benchmarks.rerank_real {argv_text}".strip()
    ran = 0
    for task in args.tasks:
        data = load_task(task, root)
        if data is None:
            continue
        entry = run_task(task, data, args) | {"stamp": stamp(command)}
        previous = report["tasks"].get(task)
        if args.skip_training and previous and _same_model(previous, entry):
            # re-evaluated, not retrained: keep the stamp of the run that trained the model
            entry["training_stamp"] = previous.get("training_stamp") or previous["stamp"]
        report["tasks"][task] = entry
        ran += 1
        print(json.dumps(report["tasks"][task]["test"]), flush=True)
    if not ran:
        print("no data set found; nothing to report", file=sys.stderr)
        return 0
    report["stamp"] = stamp(command)
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (results_dir / "rerank_real.md").write_text(markdown(report), encoding="utf-8")
    print(f"wrote {json_path} and {results_dir / 'rerank_real.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
