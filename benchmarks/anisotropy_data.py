"""The data of :mod:`benchmarks.anisotropy_real`: STS-B English and Chinese pairs, the sentences
whitening is fitted on, and QBQTC v1 pooled retrieval over the test_public queries."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from benchmarks.datasets import DatasetMissing, datasets_root, load_eval_dataset
from benchmarks.rerank_real import read_qbqtc_split, read_stsb_split

WHITEN_FIT_SENTENCES = 3000


def read_stsb_zh_split(path: Path) -> tuple[list[str], list[str], list[float]]:
    """Chinese STS-B ``STS-B.<split>.data``: ``s1 \\t s2 \\t score`` (split on tabs only)."""
    first, second, scores = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise ValueError(f"{path}: line {line_no} has {len(fields)} fields, expected 3")
            first.append(fields[0].strip())
            second.append(fields[1].strip())
            scores.append(float(fields[2]))
    return first, second, scores


def stsb(lang: str, split: str) -> tuple[list[str], list[str], list[float]]:
    """STS-B ``lang`` ("en"/"zh") ``split`` ("train"/"dev"/"test") as (s1, s2, score)."""
    root = datasets_root()
    if lang == "en":
        path = root / "stsb_en" / f"sts-{split}.csv"
        reader = read_stsb_split
    else:
        name = {"train": "train", "dev": "valid", "test": "test"}[split]
        path = root / "stsb_zh" / f"STS-B.{name}.data"
        reader = read_stsb_zh_split
    if not path.is_file():
        raise DatasetMissing(f"{path} not found; set ADRECALL_DATASETS to the shared data sets")
    return reader(path)


def whitening_fit_sentences(lang: str, n: int = WHITEN_FIT_SENTENCES, seed: int = 0) -> list[str]:
    """Up to ``n`` distinct STS-B train sentences of ``lang`` (labels unused)."""
    s1, s2, _ = usable(*stsb(lang, "train"))
    unique = list(dict.fromkeys(s1 + s2))
    return random.Random(seed).sample(unique, min(n, len(unique)))


@dataclass
class PooledTask:
    """QBQTC v1 pooled corpus with the test_public queries only."""

    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    dropped_docs: int


def qbqtc_test_public() -> PooledTask:
    """Pooled QBQTC v1 (all 17,710 titles) restricted to the test_public queries.

    Docs without text cannot be embedded and are left out (as ``benchmarks.dense_systems``
    does); they count as not retrieved.
    """
    dataset = load_eval_dataset("qbqtc-v1-pooled")
    test_queries, _, _ = read_qbqtc_split(datasets_root() / "qbqtc" / "v1" / "test_public.json")
    wanted = set(test_queries)
    qids = [q for q, text in dataset.queries.items() if text in wanted]
    pairs = [(d, t) for d, t in zip(dataset.doc_ids(), dataset.doc_texts()) if t.strip()]
    return PooledTask(
        doc_ids=[d for d, _ in pairs],
        doc_texts=[t for _, t in pairs],
        query_ids=qids,
        query_texts=[dataset.queries[q] for q in qids],
        qrels={q: dataset.qrels[q] for q in qids if q in dataset.qrels},
        dropped_docs=len(dataset.corpus) - len(pairs),
    )


def usable(first: list[str], second: list[str], scores: list[float]) -> tuple[list[str], list[str], list[float]]:
    """Drop pairs with a blank side (nothing to embed)."""
    keep = [i for i, (a, b) in enumerate(zip(first, second)) if a.strip() and b.strip()]
    if len(keep) < len(first):
        print(f"  left out {len(first) - len(keep)} pair(s) with a blank side", flush=True)
    return [first[i] for i in keep], [second[i] for i in keep], [scores[i] for i in keep]
