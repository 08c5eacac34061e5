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
and ``.json``. Models live under ``--work-dir`` (default /tmp/adrecall-domain-adapt).

    nohup nice -n 10 python -m benchmarks.domain_adapt_recipe --preset small > /tmp/recipe.log 2>&1 &

On your own corpus and model (the steps are ordinary ``adrecall`` commands):

    adrecall extend-vocab --model MODEL --texts corpus.txt --out ext
    adrecall pretrain --model ext --texts corpus.txt --out ext-pt --precision bf16
    adrecall distill --model ext --texts corpus.txt --out ext-kd --precision bf16
"""

from __future__ import annotations

import argparse
import csv
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

from adrecall.settings_checks import PRECISIONS

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

# What a reader of each preset's table must know (the full preset needs none).
PRESET_CAVEATS = {
    "small": ("A short run on a shared machine: pre-training and distillation saw well under one "
              "epoch of a 30k-text subset of the corpus and the fine-tuning a fifth of QBQTC train, "
              "so these numbers show where each step points after minutes of CPU, not what the "
              "recipe reaches when run to convergence (`--preset full`)."),
    "medium": ("One epoch of pre-training and one of distillation over a 60k-text subset of the "
               "corpus (the full corpus has about 207k texts), and one epoch of fine-tuning on all "
               "of QBQTC v1 train. Longer pre-training (`--preset full`) was not run."),
    "smoke": "A check that every step runs; its numbers mean nothing.",
}

# ---------------------------------------------------------------- data
def datasets_root() -> Path:
    from benchmarks.datasets import datasets_root as root

    return root()


def _clean(text: str) -> str:
    return text.replace("\ufeff", "").strip()


def read_qbqtc(path: Path) -> tuple[list[str], list[str], list[float]]:
    """QBQTC JSON lines: query, title and the label (key ``relevant`` in v1, ``label`` in final)."""
    queries, titles, labels = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                queries.append(_clean(str(row["query"])))
                titles.append(_clean(str(row["title"])))
                labels.append(float(row.get("relevant", row.get("label"))))
    return queries, titles, labels


def read_stsb_zh(path: Path) -> tuple[list[str], list[str], list[float]]:
    """Chinese STS-B: ``s1<TAB>s2<TAB>score`` (0–5)."""
    first, second, scores = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 3:
                first.append(_clean(fields[0]))
                second.append(_clean(fields[1]))
                scores.append(float(fields[2]))
    return first, second, scores


def sentence_pair_texts(root: Path) -> list[str]:
    """Both sentences of every LCQMC/BQ/ATEC/ATEC_CCKS pair found under ``root/zh_sentpairs``."""
    folder = root / "zh_sentpairs"
    texts: list[str] = []
    for path in sorted(folder.glob("**/*")):
        if path.suffix not in (".txt", ".csv") or not path.is_file():
            continue
        with open(path, encoding="utf-8-sig") as handle:
            if path.parent.name == "BQ_corpus":
                rows = [r for r in csv.reader(handle)][1:]
                texts += [_clean(x) for r in rows if len(r) >= 3 for x in r[:2]]
                continue
            for line in handle:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 3 and fields[-1].strip() in ("0", "1"):
                    texts += [_clean(fields[-3]), _clean(fields[-2])]
    return texts


def build_corpus(root: Path, out: Path, limit: int | None, seed: int) -> dict:
    """Write the adaptation corpus (one normalised text per line); never an evaluation text."""
    from adrecall.textnorm import normalize_text

    texts: list[str] = []
    sources: dict[str, int] = {}
    for rel in ("qbqtc/v1/train.json", "qbqtc/v1/dev.json", "qbqtc/final/dev.json"):
        if (root / rel).is_file():
            q, t, _ = read_qbqtc(root / rel)
            texts += q + t
            sources[rel] = len(q) + len(t)
    pairs = sentence_pair_texts(root)
    sources["zh_sentpairs (LCQMC, BQ, ATEC, ATEC_CCKS)"] = len(pairs)
    texts += pairs
    excluded = set()
    q, t, _ = read_qbqtc(root / "qbqtc/v1/test_public.json")
    s1, s2, _ = read_stsb_zh(root / "stsb_zh/STS-B.test.data")
    excluded = {normalize_text(x) for x in q + t + s1 + s2}
    unique = list(dict.fromkeys(n for n in (normalize_text(x) for x in texts) if n))
    kept = [x for x in unique if x not in excluded]
    if limit is not None and len(kept) > limit:
        rng = np.random.default_rng(seed)
        kept = [kept[i] for i in sorted(rng.choice(len(kept), size=limit, replace=False))]
    out.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
    return {"path": str(out), "texts": len(kept), "raw_texts": len(texts), "unique": len(unique),
            "dropped_as_evaluation_texts": len(unique) - len([x for x in unique if x not in excluded]),
            "sources": sources, "limit": limit,
            "characters": sum(len(x) for x in kept)}


def evaluation_data(
    root: Path, train_pairs: int | None, seed: int, eval_limit: int | None = None
) -> dict:
    """QBQTC v1 train (maybe a seeded subset of queries)/dev/test_public and STS-B zh test
    (``eval_limit``: only the first rows of dev and test, for smoke runs)."""
    train = read_qbqtc(root / "qbqtc/v1/train.json")
    if train_pairs is not None and len(train[0]) > train_pairs:
        queries = list(dict.fromkeys(train[0]))
        rng = np.random.default_rng(seed)
        chosen, count = set(), 0
        for i in rng.permutation(len(queries)):  # whole queries, so per-query structure stays
            chosen.add(queries[i])
            count += train[0].count(queries[i])
            if count >= train_pairs:
                break
        keep = [i for i, q in enumerate(train[0]) if q in chosen]
        train = tuple([part[i] for i in keep] for part in train)  # type: ignore[assignment]
    def cut(split: tuple) -> tuple:
        return split if eval_limit is None else tuple(list(part)[:eval_limit] for part in split)

    return {
        "qbqtc_train": train,
        "qbqtc_dev": cut(read_qbqtc(root / "qbqtc/v1/dev.json")),
        "qbqtc_test": cut(read_qbqtc(root / "qbqtc/v1/test_public.json")),
        "stsb_zh_test": cut(read_stsb_zh(root / "stsb_zh/STS-B.test.data")),
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
    model = BertSim.load(out, precision=args.precision)
    scores = evaluate_pair_scorer(lambda a, b: model.predict_pairs(a, b), data)
    scores["training"] = {"train_pairs": len(train), "seconds": round(result.seconds, 1),
                          "best_epoch": result.best_epoch, "best_dev": result.best_metrics}
    return scores


# ---------------------------------------------------------------- report
ROWS = (
    ("default", "the default model as is"),
    ("extended", "extended vocabulary only"),
    ("extended+pretrained", "extended + MLM pre-trained"),
    ("extended+distilled", "extended + distilled from USE"),
    ("extended+wobert", "extended + jieba words, WoBERT tokenisation (`--compare-wobert`)"),
)


def markdown(state: dict, args: argparse.Namespace, stamp: dict) -> str:
    def get(key: str, *path: str) -> str:
        node: Any = state.get(key, {}).get("result")
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        return f"{node:.3f}" if isinstance(node, float) else "—"

    def secs(key: str) -> str:
        return f"{state[key]['wall_seconds']:.0f}" if key in state else "—"

    lines = [
        "# Domain adaptation of the default bi-encoder to Chinese (issue 6)",
        "",
        f"Command: `{stamp['command']}`  ",
        (f"Date: {stamp['date']}; git {stamp['git']}; preset `{args.preset}` "
        f"({json.dumps(PRESETS[args.preset])}); precision {args.precision}; "
        f"{args.threads} torch thread(s) on a shared 2-core Xeon (load averages per step in the JSON)."),
        "",
        ("QBQTC v1 test_public (1,743 pairs, Spearman of scores against 0/1/2 labels and mean "
        "nDCG@10 per query) and Chinese STS-B test (1,361 pairs, Spearman). Bi-encoder = cosine "
        "of the two texts' vectors; BertSim = the cross-encoder trained on QBQTC v1 train."),
        "",
        ("| start model | bi-encoder as is: QBQTC ρ | nDCG@10 | STS-B zh ρ | bi-encoder fine-tuned: "
        "QBQTC ρ | nDCG@10 | STS-B zh ρ | BertSim: QBQTC ρ | nDCG@10 | STS-B zh ρ |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in ROWS:
        base = f"evaluate/{key}"
        if key == "extended+wobert" and base + "/bi-encoder" not in state:
            continue
        lines.append(
            f"| {label} | {get(base + '/bi-encoder', 'qbqtc', 'spearman')} | "
            f"{get(base + '/bi-encoder', 'qbqtc', 'ndcg@10')} | "
            f"{get(base + '/bi-encoder', 'stsb_zh', 'spearman')} | "
            f"{get(base + '/bi-encoder-finetuned', 'qbqtc', 'spearman')} | "
            f"{get(base + '/bi-encoder-finetuned', 'qbqtc', 'ndcg@10')} | "
            f"{get(base + '/bi-encoder-finetuned', 'stsb_zh', 'spearman')} | "
            f"{get(base + '/bertsim', 'qbqtc', 'spearman')} | {get(base + '/bertsim', 'qbqtc', 'ndcg@10')} | "
            f"{get(base + '/bertsim', 'stsb_zh', 'spearman')} |"
        )
    for key, label in (("evaluate/use-teacher", "USE multilingual v3 teacher alone"),
                       ("evaluate/bm25", "BM25 (jieba)")):
        lines.append(f"| {label} | {get(key, 'qbqtc', 'spearman')} | {get(key, 'qbqtc', 'ndcg@10')} | "
                     f"{get(key, 'stsb_zh', 'spearman')} | | | | | | |")
    ft = state.get("evaluate/default/bertsim", {}).get("result", {}).get("training", {})
    lines += [
        "",
        (f"Fine-tuning (the same for every start model): {ft.get('train_pairs', '—')} QBQTC v1 train "
        f"pairs (whole queries, seeded), {PRESETS[args.preset]['epochs']} epoch(s), batch 32, max "
        "length 64, best epoch on QBQTC v1 dev; bi-encoder with CoSENT (encoder_training), BertSim "
        "with MSE (rerank, encoder lr 1e-5, head 1e-4). BertSim's STS-B column scores sentence pairs "
        "with a model trained for query-title relevance (a transfer check only)."),
    ]
    caveat = PRESET_CAVEATS.get(args.preset)
    if caveat:
        lines += ["", f"**Preset `{args.preset}`.** {caveat}"]
    lines += ["", "Wall time of every step (seconds; CPU seconds and load in the JSON):", "",
              "| step | wall s |", "|---|---|"]
    lines += [f"| {key} | {secs(key)} |" for key in state]
    ext = state.get("extend", {}).get("result", {})
    pre = state.get("pretrain", {}).get("result", {})
    dis = state.get("distill", {}).get("result", {})
    lines += [
        "",
        (f"Extension: vocabulary {ext.get('old_vocab_size')} → {ext.get('new_vocab_size')} "
        f"({ext.get('added_chars')} characters, {ext.get('added_words')} words); [UNK] share of "
        f"corpus tokens {ext.get('unk_rate_before')} → {ext.get('unk_rate_after')}.  "),
    ]
    if "extend-wobert" in state:
        wob = state["extend-wobert"]["result"]
        lines.append(
            f"WoBERT extension: vocabulary {wob.get('old_vocab_size')} → {wob.get('new_vocab_size')} "
            f"({wob.get('added_chars')} characters, {wob.get('added_words')} jieba words); "
            f"WoBERT pre-tokenisation {'on' if wob.get('wobert') else 'off'}.  ")
    lines += [
        (f"Pre-training: {pre.get('steps')} steps, {pre.get('tokens_seen')} tokens, "
        f"{pre.get('tokens_per_second')} tokens/s; held-out perplexity "
        f"{pre.get('heldout_perplexity_before')} → {pre.get('heldout_perplexity_after')}.  "),
        (f"Distillation: {dis.get('steps')} steps; held-out cosine to the teacher "
        f"{dis.get('heldout_cosine_before')} → {dis.get('heldout_cosine_after')}; teacher "
        f"{dis.get('teacher_seconds')} s."),
        "",
        f"![training curves]({Path(args.results).name}.png)",
    ]
    return "\n".join(lines) + "\n"


def plot_curves(state: dict, stamp: dict, path: Path) -> None:
    """PNG of the training curves: MLM loss (pre-training) and MSE to the teacher
    (distillation) per step, with the held-out values before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = (("pretrain", "MLM loss", "heldout_loss_before", "heldout_loss_after"),
              ("distill", "MSE to the USE teacher", "heldout_mse_before", "heldout_mse_after"))
    for ax, (step, label, before, after) in zip(axes, panels):
        result = state.get(step, {}).get("result", {})
        curve = result.get("loss_curve") or []
        if curve:
            ax.plot([c[0] for c in curve], [c[1] for c in curve], label="training (window mean)")
            last = curve[-1][0]
            ax.scatter([0, last], [result.get(before), result.get(after)], color="C3", zorder=3,
                       label=f"held-out: {result.get(before):.4g} → {result.get(after):.4g}")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(label)
        ax.set_title(f"{step}: {result.get('steps', 0)} steps, {result.get('epochs', 0)} epoch(s)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.text(0.01, 0.01, f"{stamp['command']}\n{stamp['date']}  git {stamp['git']}",
             fontsize=6, family="monospace", va="bottom")
    fig.subplots_adjust(bottom=0.22, wspace=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    out.with_suffix(".md").write_text(markdown(state, args, stamp), encoding="utf-8")
    plot_curves(state, stamp, out.with_suffix(".png"))
    print(markdown(state, args, stamp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
