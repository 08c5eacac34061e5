"""Anisotropy, pooling, whitening and fine-tuning on real data (issue 4, part 4).

Two stages, both reading the shared data sets (``$ADRECALL_DATASETS``) and writing only under
``--work`` (default ``/tmp/adrecall-anisotropy``) and ``--results`` (default
``benchmarks/results``):

``train``: fine-tune the default bi-encoder on QBQTC v1 **train** only: MultipleNegativesRanking
loss over (query, title with label >= 1) with one hard negative per row mined from an index of
the train titles built with the base model (labelled-relevant titles and their duplicates never
mined), QBQTC v1 dev as the per-epoch dev split, 1 epoch, bf16 autocast. The model goes to
``<work>/finetuned``.

``eval``: for raw CLS, mean pooling, first-last average, the model's own pooling, BERT-whitening
of the model's own vectors (full, 256, 128 dims) and the fine-tuned encoder:

* STS-B English and Chinese **test** Spearman of cosine against the gold score;
* QBQTC v1 pooled retrieval (corpus = all 17,710 v1 titles) recall@10/@100 and nDCG@10 over the
  **test_public** queries only;
* anisotropy figures (random-pair cosine, top-1/top-10 PCA variance share) on the STS-B English
  test sentences and on the QBQTC corpus titles.

Whitening is fitted without labels: on 3,000 STS-B train sentences of the same language for
STS-B, and on the QBQTC corpus itself for retrieval (what ``adrecall build --whiten`` does with
the ads it indexes), so whitened anisotropy figures on the QBQTC corpus are ~0 by construction.

Results: ``anisotropy.json``, ``anisotropy.md`` and ``anisotropy.png`` under ``--results``.
The data sets are read by :mod:`benchmarks.anisotropy_data`, the page and the figure written by
:mod:`benchmarks.anisotropy_report`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.anisotropy_data import (
    WHITEN_FIT_SENTENCES,
    qbqtc_test_public,
    stsb,
    usable,
    whitening_fit_sentences,
)
from benchmarks.anisotropy_report import markdown, plot
from benchmarks.datasets import DatasetMissing, datasets_root
from benchmarks.rerank_real import read_qbqtc_split

WHITEN_DIMS: tuple[int | None, ...] = (None, 256, 128)
BASE_VARIANTS = ("cls", "mean", "first_last_avg", "model")


# ---------------------------------------------------------------- train stage


def train_stage(args: argparse.Namespace) -> int:
    """Build the mining index over QBQTC train titles, then fine-tune with MNRL + hard negatives."""
    import pandas as pd

    from encoder_training.finetune import TrainEncoderConfig, train_encoder
    from encoder_training.pairs import pairs_from_lists
    from index_build.build_job import build_index

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folder = datasets_root() / "qbqtc" / "v1"
    train = pairs_from_lists(*usable(*read_qbqtc_split(folder / "train.json")), source="qbqtc v1 train")
    dev = pairs_from_lists(*usable(*read_qbqtc_split(folder / "dev.json")), role="dev", source="qbqtc v1 dev")
    titles = list(dict.fromkeys(train.texts))
    ads = work / "train_titles.csv"
    index_dir = work / "mining-index"
    if not (index_dir / "manifest.json").is_file():
        pd.DataFrame({"ad_id": [f"t{i:05d}" for i in range(len(titles))], "text": titles}).to_csv(ads, index=False)
        started = time.perf_counter()
        summary = build_index(ads, index_dir, batch_size=128)
        print(f"mining index: {summary.count} train titles in {time.perf_counter() - started:.0f} s", flush=True)
    config = TrainEncoderConfig(
        loss="mnrl",
        epochs=1,
        batch_size=args.batch_size,
        lr=args.lr,
        max_length=64,
        hard_negatives=1,
        mining_candidates=30,
        max_train_rows=args.max_train_rows,
        precision="bf16",
        seed=42,
        overwrite=True,
    )
    trained = train_encoder(train, work / "finetuned", dev=dev, config=config, index=index_dir)
    print(json.dumps({k: v for k, v in trained.to_dict().items() if k != "dev_history"}, indent=2, ensure_ascii=False))
    return 0


# ---------------------------------------------------------------- eval stage


def _spearman(a: np.ndarray, b: np.ndarray, gold: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    from encoder_training.diagnostics import pair_cosines

    return float(spearmanr(pair_cosines(a, b), np.asarray(gold)).statistic)


def _retrieval(
    docs: np.ndarray, queries: np.ndarray, doc_ids: list[str], qids: list[str], qrels: dict
) -> dict[str, Any]:
    import faiss

    from encoder_training.diagnostics import unit_rows
    from retrieval.metrics import evaluate

    d = np.ascontiguousarray(unit_rows(docs), dtype=np.float32)
    q = np.ascontiguousarray(unit_rows(queries), dtype=np.float32)
    index = faiss.IndexFlatIP(d.shape[1])
    index.add(d)
    scores, ids = index.search(q, 100)
    run: dict[object, list[tuple[object, float]]] = {
        qid: [(doc_ids[i], float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
        for qid, row_ids, row_scores in zip(qids, ids, scores)
    }
    result = evaluate(run, qrels, ks=(10, 100))
    names = ("recall@10", "recall@100", "ndcg@10")
    return {k: result.metrics[k] for k in names} | {
        "n_queries": result.n_queries,
        "per_query": {q: {k: m[k] for k in names} for q, m in result.per_query.items()},
    }


def paired_change(base: dict[str, dict[str, float]], new: dict[str, dict[str, float]], metric: str,
                  resamples: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Mean per-query change of ``metric``, its 95% paired-bootstrap interval over queries, and
    how many queries went up / down."""
    queries = sorted(set(base) & set(new))
    diff = np.array([new[q][metric] - base[q][metric] for q in queries])
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(diff.mean()), "ci95_low": float(low), "ci95_high": float(high),
            "queries_up": int((diff > 0).sum()), "queries_down": int((diff < 0).sum()),
            "queries": len(queries)}


def _embed_all(
    embedder, variants, texts: dict[str, list[str]], work: Path, bf16: bool
) -> dict[str, dict[str, np.ndarray]]:
    """``{part: {variant: vectors}}``, cached as npz under ``work`` per model weights and precision,
    reused only for the very same texts (their SHA-256 is stored with the vectors)."""
    from adrecall.models import weights_sha256

    cache = work / f"emb-{weights_sha256(embedder.model_dir)[:12]}-{'bf16' if bf16 else 'fp32'}"
    out: dict[str, dict[str, np.ndarray]] = {}
    for part, items in texts.items():
        path = cache / f"{part}.npz"
        digest = hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()
        if path.is_file():
            with np.load(path) as data:
                fresh = "texts_sha256" in data and str(data["texts_sha256"]) == digest
                if fresh and all(v in data for v in variants):
                    out[part] = {v: data[v] for v in variants}
                    continue
        started = time.perf_counter()
        out[part] = embedder.embed(items, variants, batch_size=128, bf16=bf16, progress=False)
        print(f"  embedded {part}: {len(items)} texts in {time.perf_counter() - started:.0f} s", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, texts_sha256=np.array(digest), **out[part])  # type: ignore[arg-type]
    return out


def _add_en_sentences(vecs: dict[str, dict[str, np.ndarray]], unique: np.ndarray) -> None:
    """``vecs["stsb_en_sentences"]``: the distinct STS-B en test sentences' vectors."""
    vecs["stsb_en_sentences"] = {
        v: np.concatenate([vecs["stsb_en_test_1"][v], vecs["stsb_en_test_2"][v]])[unique]
        for v in vecs["stsb_en_test_1"]
    }


def eval_stage(args: argparse.Namespace) -> int:
    """Measure every variant and write anisotropy.json/.md/.png."""
    from encoder_training.diagnostics import unit_rows, variant_diagnostics
    from encoder_training.pooling_variants import VARIANT_LABELS, PoolingEmbedder
    from retrieval.whitening import fit_whitening

    work = Path(args.work)
    started = time.perf_counter()
    en1, en2, en_gold = usable(*stsb("en", "test"))
    zh1, zh2, zh_gold = usable(*stsb("zh", "test"))
    task = qbqtc_test_public()
    doc_ids, doc_texts, qids, query_texts, qrels = (
        task.doc_ids, task.doc_texts, task.query_ids, task.query_texts, task.qrels
    )
    if args.smoke:  # a quick check of the code path on small slices; numbers mean nothing
        en1, en2, zh1, zh2 = en1[:120], en2[:120], zh1[:120], zh2[:120]
        en_gold, zh_gold = en_gold[:120], zh_gold[:120]
        keep = set(doc_texts[:1500]) | {t for q in qids for d in qrels[q] for t in [task.doc_texts[task.doc_ids.index(d)]] if d in task.doc_ids}
        pairs = [(d, t) for d, t in zip(doc_ids, doc_texts) if t in keep]
        doc_ids, doc_texts = [d for d, _ in pairs], [t for _, t in pairs]
    en_all = en1 + en2
    first_of = {t: i for i, t in reversed(list(enumerate(en_all)))}
    unique_en = np.array(sorted(first_of.values()))  # distinct STS-B en test sentences
    texts = {
        "stsb_en_test_1": en1, "stsb_en_test_2": en2, "stsb_zh_test_1": zh1, "stsb_zh_test_2": zh2,
        "qbqtc_docs": doc_texts, "qbqtc_queries": query_texts,
    }
    n_fit = 400 if args.smoke else WHITEN_FIT_SENTENCES
    fit_texts = {"fit_en": whitening_fit_sentences("en", n_fit), "fit_zh": whitening_fit_sentences("zh", n_fit)}

    print("base model: embedding under every pooling variant", flush=True)
    base = PoolingEmbedder(None)
    vecs = _embed_all(base, list(BASE_VARIANTS), {**texts, **fit_texts}, work, not args.fp32)
    _add_en_sentences(vecs, unique_en)
    systems: list[dict] = []

    def measure(name: str, label: str, get, dim: int) -> None:
        """``get(part) -> vectors`` for every evaluation part."""
        row: dict[str, object] = {"system": name, "label": label, "dimension": dim}
        row["stsb_en_spearman"] = _spearman(get("stsb_en_test_1"), get("stsb_en_test_2"), en_gold)
        row["stsb_zh_spearman"] = _spearman(get("stsb_zh_test_1"), get("stsb_zh_test_2"), zh_gold)
        row["qbqtc"] = _retrieval(get("qbqtc_docs"), get("qbqtc_queries"), doc_ids, qids, qrels)
        for part, key in (("stsb_en_sentences", "anisotropy_stsb_en"), ("qbqtc_docs", "anisotropy_qbqtc_titles")):
            figures, _ = variant_diagnostics(name, label, get(part), n_pairs=20_000, seed=0)
            row[key] = {
                "random_pair_cosine_mean": figures.random_pair_cosine_mean,
                "random_pair_cosine_std": figures.random_pair_cosine_std,
                "top1_variance_share": figures.top1_variance_share,
                "top10_variance_share": figures.top10_variance_share,
                "mean_vector_norm": figures.mean_vector_norm,
            }
        systems.append(row)
        print(f"  {label}: {json.dumps({k: v for k, v in row.items() if k.startswith(('stsb', 'qbqtc'))}, default=str)}", flush=True)

    plotted = [
        (f"{VARIANT_LABELS[v]}{' (= mean pooling)' if v == 'model' else ''}",
         {p: vecs[p][v] for p in ("stsb_en_sentences", "qbqtc_docs")})
        for v in ("cls", "first_last_avg", "model")
    ]
    for variant in BASE_VARIANTS:
        measure(variant, VARIANT_LABELS[variant], lambda part, v=variant: vecs[part][v], int(vecs["qbqtc_docs"][variant].shape[1]))

    # Whitening of the model's own (unit) vectors: STS-B fitted per language on train sentences,
    # QBQTC fitted on its corpus, as an index build does.
    own = {part: unit_rows(v["model"]).astype(np.float32) for part, v in vecs.items()}
    fit_for = {"stsb_en": "fit_en", "stsb_zh": "fit_zh", "qbqtc": "qbqtc_docs"}
    for dim in WHITEN_DIMS:
        transforms = {key: fit_whitening(own[part], dim) for key, part in fit_for.items()}

        def whitened(part: str, transforms=transforms) -> np.ndarray:
            key = "stsb_en" if part.startswith("stsb_en") else "stsb_zh" if part.startswith("stsb_zh") else "qbqtc"
            return transforms[key].apply(own[part])

        out_dim = transforms["qbqtc"].output_dim
        label = f"whitening ({'full, ' if dim is None else ''}{out_dim})"
        measure(f"whiten_{'full' if dim is None else dim}", label, whitened, out_dim)
        if dim is None:
            plotted.append((f"{label}: en fit on train, QBQTC fit on itself",
                            {p: whitened(p) for p in ("stsb_en_sentences", "qbqtc_docs")}))

    finetuned = Path(args.finetuned) if args.finetuned else work / "finetuned"
    training = None
    if (finetuned / "modules.json").is_file():
        print(f"fine-tuned model {finetuned}: embedding", flush=True)
        tuned = PoolingEmbedder(finetuned)
        tvecs = _embed_all(tuned, ["model"], texts, work, not args.fp32)
        _add_en_sentences(tvecs, unique_en)
        measure("finetuned", "fine-tuned (MNRL, QBQTC train)", lambda part: tvecs[part]["model"], int(tvecs["qbqtc_docs"]["model"].shape[1]))
        plotted.append(("fine-tuned", {p: tvecs[p]["model"] for p in ("stsb_en_sentences", "qbqtc_docs")}))
        info = finetuned / "adrecall_training.json"
        training = json.loads(info.read_text(encoding="utf-8")) if info.is_file() else None
    else:
        print(f"no fine-tuned model at {finetuned}: run the train stage first; its row is left out", flush=True)

    by_name = {r["system"]: r for r in systems}
    changes = {}
    for name in ("whiten_full", "whiten_256", "whiten_128", "finetuned"):
        if name in by_name:
            base_q, new_q = by_name["model"]["qbqtc"]["per_query"], by_name[name]["qbqtc"]["per_query"]
            changes[name] = {m: paired_change(base_q, new_q, m) for m in ("recall@10", "recall@100")}
    for r in systems:  # per-query figures fed the intervals; keep the JSON small
        r["qbqtc"].pop("per_query", None)
    report = {
        "benchmark": "anisotropy_real",
        "qbqtc_change_vs_own_pooling": changes,
        "model": "default (all-MiniLM-L6-v2, 384 dims, 244 CJK characters in its vocabulary)",
        "data": {
            "stsb_en_test_pairs": len(en_gold), "stsb_zh_test_pairs": len(zh_gold),
            "qbqtc_corpus": len(doc_ids), "qbqtc_test_public_queries": len(qids),
            "qbqtc_docs_left_out_without_text": task.dropped_docs,
            "anisotropy_texts": {"stsb_en_sentences": len(unique_en), "qbqtc_titles": len(doc_texts)},
            "whitening_fit": {"stsb_en": len(fit_texts["fit_en"]), "stsb_zh": len(fit_texts["fit_zh"]),
                              "qbqtc": f"the {len(doc_texts)} corpus titles"},
        },
        "settings": {"text_normalisation": True, "max_length": base.max_length, "precision": "fp32" if args.fp32 else "bf16 autocast",
                     "random_pairs": 20_000, "first_last_avg": "mean of hidden_states[1] and [-1]"},
        "systems": systems,
        "training": training,
        "seconds": round(time.perf_counter() - started, 1),
    }
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / "anisotropy.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (results / "anisotropy.md").write_text(markdown(report), encoding="utf-8")
    plot(plotted, results / "anisotropy.png")
    print(markdown(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("train", "eval"))
    parser.add_argument("--work", default="/tmp/adrecall-anisotropy", help="scratch folder (never the repository)")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--finetuned", default=None, help="fine-tuned model folder (default <work>/finetuned)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-train-rows", type=int, default=None, help="subsample the MNRL rows")
    parser.add_argument("--smoke", action="store_true", help="small slices only, to check the code path")
    parser.add_argument("--fp32", action="store_true", help="embed in fp32 (default bf16 autocast, ~2.7x faster)")
    args = parser.parse_args(argv)
    try:
        return train_stage(args) if args.stage == "train" else eval_stage(args)
    except DatasetMissing as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
