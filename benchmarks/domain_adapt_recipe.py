"""The whole domain-adaptation recipe as one command, with real numbers (issue 6, part 5).

Starting from a BERT bi-encoder (default: the embedded MiniLM-L6, 244 CJK characters):

1. ``corpus``: Chinese text for adaptation. By default QBQTC queries and titles (v1 train/dev,
   final dev) and LCQMC/BQ/ATEC sentences from ``$ADRECALL_DATASETS``; every text that also
   appears in an evaluation set (QBQTC v1 test_public, Chinese STS-B test) is left out. Pass
   ``--corpus FILE...`` to use your own (.txt one text per line, or tables with ``text``).
2. ``extend``: ``adrecall extend-vocab`` (the corpus's missing CJK characters).
3. ``pretrain``: ``adrecall pretrain`` on the extended model (whole word masking MLM).
4. ``distill``: ``adrecall distill`` of USE multilingual v3 into the extended model.
5. ``evaluate``: for each start model (default as is, extended, extended + pre-trained,
   extended + distilled) the bi-encoder zero-shot, then the same fine-tuning on QBQTC v1 train
   (bi-encoder: CoSENT via ``encoder_training``; BertSim: ``rerank``), each evaluated on QBQTC
   v1 test_public (Spearman, nDCG@10 per query) and Chinese STS-B test (Spearman); plus the
   USE teacher alone and BM25 (jieba tokens). ``--compare-wobert N`` adds one more start
   model: the default extended with N frequent jieba words and WoBERT pre-tokenisation (its
   step ``extend-wobert`` is kept like the others; ``--redo extend`` repeats both extensions).

Presets: ``smoke`` (checks every step runs, minutes), ``small`` (30k texts, 600 MLM and 600
distillation steps, 3k fine-tuning pairs: about an hour on a shared 2-core machine), ``medium``
(one epoch of MLM and of distillation over 60k texts, all of QBQTC v1 train: about 1.5-2 hours
with ``--threads 2``) and ``full`` (the whole ~207k-text corpus: many CPU hours).

Every step records its wall and CPU seconds and the machine's load average, in
``WORK/recipe.json``; a step whose result is there is skipped on a re-run (delete the entry or
pass ``--redo STEP`` to repeat it). The table goes to ``benchmarks/results/domain_adapt.md``
and ``.json``. Models live under ``--work-dir`` (default /tmp/adrecall-domain-adapt). The
corpus and evaluation sets come from :mod:`benchmarks.domain_adapt_data`, the page and the
figure from :mod:`benchmarks.domain_adapt_report`.

    nohup nice -n 10 python -m benchmarks.domain_adapt_recipe --preset small > /tmp/recipe.log 2>&1 &

On your own corpus and model (the steps are ordinary ``adrecall`` commands):

    adrecall extend-vocab --model MODEL --texts corpus.txt --out ext
    adrecall pretrain --model ext --texts corpus.txt --out ext-pt --precision bf16
    adrecall distill --model ext --texts corpus.txt --out ext-kd --precision bf16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from adrecall.backends import torch_backend
from adrecall.settings_checks import PRECISIONS
from benchmarks.domain_adapt_data import build_corpus, datasets_root, evaluation_data
from benchmarks.domain_adapt_report import markdown, plot_curves

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STEPS = ("corpus", "extend", "pretrain", "distill", "evaluate")
PRESETS: dict[str, dict[str, Any]] = {
    # A short run that shows the trend on a shared 2-core machine in about an hour or two.
    "small": {"corpus_limit": 30_000, "pretrain_steps": 600, "distill_steps": 600,
              "train_pairs": 3000, "epochs": 1},
    # One epoch of MLM and of distillation over a 60k-text corpus, fine-tuning on all of QBQTC
    # v1 train: about 1.5 hours on 2 quiet cores with --threads 2.
    "medium": {"corpus_limit": 60_000, "pretrain_steps": None, "distill_steps": None,
               "train_pairs": None, "epochs": 1},
    # The whole corpus and QBQTC train: many CPU hours on 2 cores.
    "full": {"corpus_limit": None, "pretrain_steps": None, "distill_steps": None,
             "train_pairs": None, "epochs": 1},
    # Checks that every step runs (minutes); its numbers mean nothing.
    "smoke": {"corpus_limit": 400, "pretrain_steps": 3, "distill_steps": 3,
              "train_pairs": 64, "epochs": 1, "eval_limit": 120},
}


# ---------------------------------------------------------------- metrics
def qbqtc_metrics(queries: list[str], scores: np.ndarray, labels: list[float]) -> dict:
    from rerank.metrics import mean_ndcg_by_query, spearman

    ndcg, counted = mean_ndcg_by_query(queries, np.asarray(scores), np.asarray(labels), 10)
    return {"spearman": round(spearman(np.asarray(scores), np.asarray(labels)), 4),
            "ndcg@10": round(ndcg, 4), "ndcg_queries": counted}


def sts_metrics(scores: np.ndarray, labels: list[float]) -> dict:
    from rerank.metrics import spearman

    return {"spearman": round(spearman(np.asarray(scores), np.asarray(labels)), 4)}


def cosine_scores(encode: Callable[[list[str]], np.ndarray], first: list[str], second: list[str]) -> np.ndarray:
    unique = list(dict.fromkeys(first + second))
    vectors = encode(unique)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = {t: i for i, t in enumerate(unique)}
    a = vectors[[index[x] for x in first]]
    b = vectors[[index[x] for x in second]]
    return np.einsum("ij,ij->i", a, b)


def evaluate_pair_scorer(score: Callable[[list[str], list[str]], np.ndarray], data: dict) -> dict:
    q, t, y = data["qbqtc_test"]
    s1, s2, sy = data["stsb_zh_test"]
    return {"qbqtc": qbqtc_metrics(q, score(q, t), y), "stsb_zh": sts_metrics(score(s1, s2), sy)}


def bm25_scorer(first: list[str], second: list[str]) -> np.ndarray:
    """BM25 of each first text against its second text, IDF from all second texts."""
    from retrieval.lexical_index import LexicalIndex

    docs = list(dict.fromkeys(second))
    index = LexicalIndex.build(docs, language="zh")
    position = {d: i for i, d in enumerate(docs)}
    cache: dict[str, np.ndarray] = {}
    out = np.zeros(len(first), dtype=np.float32)
    for row, (a, b) in enumerate(zip(first, second)):
        if a not in cache:
            cache[a] = index.scores(a)
        out[row] = cache[a][position[b]]
    return out


# ---------------------------------------------------------------- steps
class Recipe:
    """Runs the steps, timing each and keeping results in ``WORK/recipe.json``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.state_path = self.work / "recipe.json"
        self.state: dict = (
            json.loads(self.state_path.read_text(encoding="utf-8")) if self.state_path.is_file() else {}
        )
        for step in args.redo or []:
            self.state = {k: v for k, v in self.state.items() if not k.startswith(step)}

    def timed(self, key: str, fn: Callable[[], dict]) -> dict:
        if key in self.state:
            print(f"[{key}] done before, skipped ({self.state[key]['wall_seconds']:.0f} s)", flush=True)
            return self.state[key]
        print(f"[{key}] start {datetime.now().strftime('%H:%M:%S')}, load {os.getloadavg()[0]:.1f}",
              flush=True)
        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        result = fn()
        record = {
            "wall_seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(_cpu_seconds() - cpu_before, 1),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "result": result,
        }
        self.state[key] = record
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.state_path)
        print(f"[{key}] {record['wall_seconds']:.0f} s wall, {record['cpu_seconds']:.0f} s CPU: "
              f"{json.dumps(_short(result), ensure_ascii=False)[:400]}", flush=True)
        return record


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _short(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("loss_curve", "config", "dev_history")}


def run(args: argparse.Namespace) -> dict:
    import torch

    from domain_adapt.config import DistillConfig, ExtendConfig, PretrainConfig
    from domain_adapt.corpus import read_texts
    from domain_adapt.distillation import distill
    from domain_adapt.pretraining import pretrain
    from domain_adapt.vocab_extension import extend_vocabulary

    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    recipe = Recipe(args)
    work = recipe.work
    root = datasets_root()
    corpus_path = work / "corpus.txt"

    if args.corpus:
        recipe.timed("corpus", lambda: {"path": ",".join(args.corpus), "texts": len(read_texts(args.corpus))})
        corpus_files: list[str] = list(args.corpus)
    else:
        recipe.timed("corpus", lambda: build_corpus(root, corpus_path, preset["corpus_limit"], args.seed))
        corpus_files = [str(corpus_path)]
    texts = read_texts(corpus_files)
    dirs = {"default": "default", "extended": str(work / "extended"),
            "extended+pretrained": str(work / "pretrained"),
            "extended+distilled": str(work / "distilled")}

    recipe.timed("extend", lambda: extend_vocabulary(
        texts, dirs["extended"], model=args.model,
        config=ExtendConfig(words=args.words, overwrite=True),
    ).to_dict())
    if args.compare_wobert:
        dirs["extended+wobert"] = str(work / "extended-wobert")
        recipe.timed("extend-wobert", lambda: extend_vocabulary(
            texts, dirs["extended+wobert"], model=args.model,
            config=ExtendConfig(words=args.compare_wobert, overwrite=True),
        ).to_dict())
    recipe.timed("pretrain", lambda: pretrain(
        texts, dirs["extended+pretrained"], model=dirs["extended"], config=PretrainConfig(
            max_steps=preset["pretrain_steps"], batch_size=32, max_length=64, lr=args.pretrain_lr,
            precision=args.precision, seed=args.seed, progress=not args.quiet,
            checkpoint_every=100, threads=args.threads,
        ),
    ).to_dict())
    recipe.timed("distill", lambda: distill(
        texts, dirs["extended+distilled"], model=dirs["extended"], config=DistillConfig(
            max_steps=preset["distill_steps"], batch_size=32, max_length=64, lr=args.distill_lr,
            precision=args.precision, seed=args.seed, progress=not args.quiet,
            checkpoint_every=100, threads=args.threads, teacher_threads=args.threads,
        ),
    ).to_dict())

    data = evaluation_data(root, preset["train_pairs"], args.seed, preset.get("eval_limit"))
    recipe.timed("evaluate/bm25", lambda: evaluate_pair_scorer(bm25_scorer, data))

    def use_alone() -> dict:
        from benchmarks.use_peer import USEEncoder

        use = USEEncoder(threads=args.threads)
        return evaluate_pair_scorer(lambda a, b: cosine_scores(use.encode, a, b), data)

    recipe.timed("evaluate/use-teacher", use_alone)
    for name, model_dir in dirs.items():
        recipe.timed(f"evaluate/{name}/bi-encoder", lambda m=model_dir: _bi_encoder(m, data))
        recipe.timed(f"evaluate/{name}/bi-encoder-finetuned",
                     lambda m=model_dir, n=name: _finetune_bi_encoder(m, work / "ft" / n, data, preset, args))
        recipe.timed(f"evaluate/{name}/bertsim",
                     lambda m=model_dir, n=name: _train_bertsim(m, work / "bertsim" / n, data, preset, args))
    return recipe.state


def _bi_encoder(model_dir: str, data: dict) -> dict:
    from retrieval.encoder import Encoder

    encoder = Encoder(model_dir)
    return evaluate_pair_scorer(lambda a, b: cosine_scores(encoder.encode, a, b), data)


def _finetune_bi_encoder(model_dir: str, out: Path, data: dict, preset: dict, args: argparse.Namespace) -> dict:
    from encoder_training.finetune import TrainEncoderConfig, train_encoder
    from encoder_training.pairs import pairs_from_lists

    train = pairs_from_lists(*data["qbqtc_train"], role="train", source="qbqtc v1 train")
    dev = pairs_from_lists(*data["qbqtc_dev"], role="dev", source="qbqtc v1 dev")
    summary = train_encoder(
        train, out, model=model_dir, dev=dev,
        config=TrainEncoderConfig(loss="cosent", epochs=preset["epochs"], batch_size=32,
                                  max_length=64, precision=args.precision, seed=args.seed,
                                  overwrite=True, progress=not args.quiet),
    )
    result = _bi_encoder(str(out), data)
    result["training"] = {"train_rows": summary.train_rows, "steps": summary.steps,
                          "seconds": summary.seconds, "best_dev": summary.best}
    return result


def _train_bertsim(model_dir: str, out: Path, data: dict, preset: dict, args: argparse.Namespace) -> dict:
    from rerank import BertSim, PairFormat, TrainConfig, pairs_from_lists, train_reranker

    fmt = PairFormat(label_min=0.0, label_max=2.0)
    train = pairs_from_lists(*data["qbqtc_train"], fmt, role="train", source="qbqtc v1 train")
    dev = pairs_from_lists(*data["qbqtc_dev"], fmt, role="dev", source="qbqtc v1 dev")
    result = train_reranker(train, out, model=model_dir, dev=dev, pair_format=fmt, config=TrainConfig(
        epochs=preset["epochs"], batch_size=32, max_length=64,
        precision=args.precision, seed=args.seed, progress=not args.quiet, overwrite=True,
        checkpoint_every=200,
    ))
    model = BertSim.load(out, backend=torch_backend(args.precision))
    scores = evaluate_pair_scorer(lambda a, b: model.predict_pairs(a, b), data)
    scores["training"] = {"train_pairs": len(train), "seconds": round(result.seconds, 1),
                          "best_epoch": result.best_epoch, "best_dev": result.best_metrics}
    return scores


# ---------------------------------------------------------------- report


def _stamp(argv: Sequence[str]) -> dict:
    import subprocess

    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, check=False).stdout.strip() or "unknown"
    except OSError:
        git = "unknown"
    return {"command": "python -m benchmarks.domain_adapt_recipe " + shlex.join(argv),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git": git}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--model", default="default", help="start model (default: embedded MiniLM-L6)")
    parser.add_argument("--corpus", nargs="+", default=None, help="your own corpus files")
    parser.add_argument("--words", type=int, default=0, help="also add N jieba words (WoBERT)")
    parser.add_argument("--compare-wobert", type=int, default=0, metavar="N",
                        help="one more start model: extended with N frequent jieba words and "
                        "WoBERT pre-tokenisation, fine-tuned and evaluated like the others")
    parser.add_argument("--work-dir", default="/tmp/adrecall-domain-adapt")
    parser.add_argument("--precision", choices=PRECISIONS, default="bf16")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--pretrain-lr", type=float, default=1e-4)
    parser.add_argument("--distill-lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--redo", nargs="*", choices=STEPS, help="repeat these steps")
    parser.add_argument("--results", default=str(RESULTS_DIR / "domain_adapt"),
                        help="results path without suffix (.json, .md and .png are written)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    state = run(args)
    stamp = _stamp(argv)
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(
        {"stamp": stamp, "preset": {args.preset: PRESETS[args.preset]}, "steps": state},
        indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(state, args, stamp, PRESETS[args.preset]), encoding="utf-8")
    plot_curves(state, stamp, out.with_suffix(".png"))
    print(markdown(state, args, stamp, PRESETS[args.preset]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
