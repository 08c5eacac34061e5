"""The data of :mod:`benchmarks.domain_adapt_recipe`: the Chinese adaptation corpus (never an
evaluation text) and the QBQTC v1 / Chinese STS-B splits the start models are evaluated on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np


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
