"""Checks on the sample catalogue shipped in index_build/sample_catalogue."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from adrecall.textnorm import normalize_text
from index_build.sample import (
    sample_ads_path,
    sample_catalogue_dir,
    sample_qrels_path,
    sample_queries_path,
)

AD_COLUMNS = ["ad_id", "text", "industry", "category", "language", "advertiser"]
DATA_FILES = ("ads.csv", "queries.jsonl", "qrels.tsv")


@pytest.fixture(scope="module")
def ads() -> list[dict[str, str]]:
    with sample_ads_path().open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def queries() -> list[dict[str, str]]:
    lines = sample_queries_path().read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def qrels() -> list[tuple[str, str, int]]:
    with sample_qrels_path().open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        assert next(reader) == ["query_id", "ad_id", "score"]
        return [(query_id, ad_id, int(score)) for query_id, ad_id, score in reader]


def _load_generator(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import make_catalogue.py by path (the sample folder is data, not a package)."""
    path = sample_catalogue_dir() / "make_catalogue.py"
    spec = importlib.util.spec_from_file_location("_sample_make_catalogue", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def _loose_key(text: str) -> str:
    lowered = text.lower()
    return " ".join("".join(c if c.isalnum() else " " for c in lowered).split())


def test_files_exist() -> None:
    for name in DATA_FILES:
        path = sample_catalogue_dir() / name
        assert path.is_file(), path
        assert path.stat().st_size > 0, path
    assert sample_ads_path().name == "ads.csv"


def test_ads_columns() -> None:
    with sample_ads_path().open(encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == AD_COLUMNS


def test_ads_rows_are_complete(ads: list[dict[str, str]]) -> None:
    assert 2500 <= len(ads) <= 4000
    for ad in ads:
        assert None not in ad, f"extra fields in {ad['ad_id']}"
        assert all(ad[column] for column in AD_COLUMNS), ad
        assert ad["ad_id"].startswith(f"{ad['language']}-{ad['industry']}-"), ad["ad_id"]


def test_ad_ids_unique(ads: list[dict[str, str]]) -> None:
    duplicated = [ad_id for ad_id, n in Counter(ad["ad_id"] for ad in ads).items() if n > 1]
    assert not duplicated


def test_texts_unique_and_non_empty(ads: list[dict[str, str]]) -> None:
    texts = [ad["text"] for ad in ads]
    assert all(text.strip() for text in texts)
    assert len(set(texts)) == len(texts)
    loose = Counter(_loose_key(text) for text in texts)
    assert not [key for key, n in loose.items() if n > 1]
    # also unique under the project's own normaliser (URLs and symbols dropped)
    strict = Counter(normalize_text(text).lower() for text in texts)
    assert all(strict), "an ad is empty after normalisation"
    assert not [key for key, n in strict.items() if n > 1]


def test_text_lengths(ads: list[dict[str, str]]) -> None:
    for ad in ads:
        if ad["language"] == "en":
            assert 8 <= len(ad["text"].split()) <= 30, ad
        else:
            assert 10 <= len("".join(ad["text"].split())) <= 40, ad


def test_languages_and_industries(ads: list[dict[str, str]]) -> None:
    languages = Counter(ad["language"] for ad in ads)
    assert set(languages) == {"en", "zh"}
    assert min(languages.values()) >= 1000
    industries = {ad["industry"] for ad in ads}
    assert len(industries) >= 10
    for industry in industries:
        categories = {ad["category"] for ad in ads if ad["industry"] == industry}
        assert len(categories) >= 3, industry


def test_chinese_ads_are_chinese(ads: list[dict[str, str]]) -> None:
    for ad in ads:
        has_cjk = any("\u4e00" <= c <= "\u9fa5" for c in ad["text"])
        assert has_cjk == (ad["language"] == "zh"), ad


def test_awkward_cases_present(ads: list[dict[str, str]]) -> None:
    texts = [ad["text"] for ad in ads]
    assert sum(".com" in t or ".cn" in t for t in texts) >= 30
    assert sum(any(ord(c) > 0x1F000 for c in t) for t in texts) >= 30
    zh_with_latin = [ad for ad in ads if ad["language"] == "zh"
                     and any("a" <= c.lower() <= "z" for c in normalize_text(ad["text"]))]
    assert len(zh_with_latin) >= 50


def test_queries(queries: list[dict[str, str]]) -> None:
    assert 30 <= len(queries) <= 50
    assert all(set(q) == {"query_id", "text", "language"} for q in queries)
    ids = [q["query_id"] for q in queries]
    assert len(set(ids)) == len(ids)
    assert all(q["text"].strip() for q in queries)
    languages = Counter(q["language"] for q in queries)
    assert set(languages) == {"en", "zh"}
    assert min(languages.values()) >= len(queries) // 3


def test_qrels_refer_to_known_ids(
    ads: list[dict[str, str]], queries: list[dict[str, str]], qrels: list[tuple[str, str, int]]
) -> None:
    query_ids = {q["query_id"] for q in queries}
    ad_ids = {ad["ad_id"] for ad in ads}
    assert qrels
    assert {query_id for query_id, _, _ in qrels} <= query_ids
    assert {ad_id for _, ad_id, _ in qrels} <= ad_ids
    assert {score for _, _, score in qrels} <= {1, 2}
    pairs = [(query_id, ad_id) for query_id, ad_id, _ in qrels]
    assert len(set(pairs)) == len(pairs)


def test_every_query_has_a_highly_relevant_ad(
    queries: list[dict[str, str]], qrels: list[tuple[str, str, int]]
) -> None:
    with_two = {query_id for query_id, _, score in qrels if score == 2}
    assert [q["query_id"] for q in queries if q["query_id"] not in with_two] == []


def test_labels_follow_categories_across_languages(
    ads: list[dict[str, str]], qrels: list[tuple[str, str, int]]
) -> None:
    by_id = {ad["ad_id"]: ad for ad in ads}
    labels: dict[tuple[str, str, str], set[int]] = {}
    languages: dict[str, set[str]] = {}
    for query_id, ad_id, score in qrels:
        ad = by_id[ad_id]
        labels.setdefault((query_id, ad["industry"], ad["category"]), set()).add(score)
        if score == 2:
            languages.setdefault(query_id, set()).add(ad["language"])
    assert all(len(scores) == 1 for scores in labels.values()), "one label per category"
    assert all(found == {"en", "zh"} for found in languages.values())


def test_generator_reproduces_committed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = _load_generator(monkeypatch)
    generator.main(tmp_path)
    for name in DATA_FILES:
        committed = (sample_catalogue_dir() / name).read_bytes()
        assert (tmp_path / name).read_bytes() == committed, f"{name} differs; re-run the generator"
