"""update, delete and compact: a deleted or replaced ad is never returned again, and after
compaction search equals a fresh build over the same final ads (fast: HashEncoder)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest

from adrecall.cli import main
from index_build.build_job import build_index
from index_build.compaction import compact_index
from index_build.index_update import update_index
from retrieval.faiss_index import INDEX_TYPES
from retrieval.index_store import IndexFormatError, read_manifest
from retrieval.retriever import Retriever
from retrieval.vector_removal import TOMBSTONES_FILE
from retrieval.whitening import WHITENING_FILE
from tests.conftest import write_table
from tests.hash_encoder import HashEncoder

N_ADS = 300
EXHAUSTIVE = {"ivf": {"nprobe": 100_000}, "ivfpq": {"nprobe": 100_000}}
"""Every IVF list probed: exact search over what the index stores."""


def catalogue(tmp_path: Path) -> dict[str, Path]:
    """The first build's ads, an update table (20 changed, 30 new) and 40 ids to delete (one
    not in the index)."""
    first = pd.DataFrame({"ad_id": [f"a{i:03d}" for i in range(N_ADS)],
                          "text": [f"ad {i} for product {i * 7 % 31}" for i in range(N_ADS)],
                          "shop": [f"s{i % 5}" for i in range(N_ADS)]})
    changed = pd.DataFrame({"ad_id": [f"a{i:03d}" for i in range(20)] + [f"n{i}" for i in range(30)],
                            "text": [f"changed ad {i}" for i in range(20)]
                            + [f"new ad {i} zebra{i}" for i in range(30)],
                            "shop": ["s9"] * 50})
    doomed = tmp_path / "delete.txt"
    doomed.write_text("".join(f"a{i:03d}\n" for i in range(100, 139)) + "\nnot-an-ad\n")
    return {"first": write_table(first, tmp_path / "first.csv"),
            "update": write_table(changed, tmp_path / "update.parquet"), "delete": doomed}


def final_ads(tables: dict[str, Path]) -> dict[str, str]:
    """ad id → text after the update: the first ads, changed, minus deleted, plus new."""
    ads = dict(pd.read_csv(tables["first"])[["ad_id", "text"]].itertuples(index=False))
    ads.update(pd.read_parquet(tables["update"])[["ad_id", "text"]].itertuples(index=False))
    for ad_id in tables["delete"].read_text().split():
        ads.pop(ad_id, None)
    return ads


def build(ads: Path, out: Path, index_type: str, **options: object) -> Retriever:
    build_index(ads, out, model=HashEncoder(), index_type=index_type, progress=False, **options)
    return Retriever.load(out, model=HashEncoder())


def update(out: Path, tables: dict[str, Path]) -> Retriever:
    update_index(out, ads=tables["update"], delete=tables["delete"], model=HashEncoder(),
                 progress=False)
    return Retriever.load(out, model=HashEncoder())


def results(retriever: Retriever, queries: list[str], index_type: str,
            k: int = 10) -> list[list[tuple[str, float]]]:
    found = retriever.search(queries, k=k, search_params=EXHAUSTIVE.get(index_type))
    return [[(h.ad_id, round(h.score, 4)) for h in hits] for hits in found]


def assert_serves_exactly(retriever: Retriever, ads: dict[str, str], index_type: str) -> None:
    """The index holds ``ads`` and nothing else: each text finds its own ad first, and the
    deepest search returns every live ad once and no other."""
    assert dict(zip(retriever.ads.column("ad_id").to_pylist(),
                    retriever.ads.column("text").to_pylist())) == ads
    texts = list(ads.values())
    top = retriever.search(texts, k=1, search_params=EXHAUSTIVE.get(index_type))
    assert [hits[0].ad_id for hits in top] == list(ads), "each ad's text finds that ad"
    everything = retriever.search(texts[:3], k=len(ads), search_params=EXHAUSTIVE.get(index_type))
    for hits in everything:
        returned = [h.ad_id for h in hits]
        assert len(returned) == len(set(returned)) and set(returned) <= set(ads)


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf"])
def test_update_delete_and_compact_equal_a_fresh_build(tmp_path: Path, index_type: str) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    build(tables["first"], out, index_type)
    updated = update(out, tables)
    expected = final_ads(tables)
    assert_serves_exactly(updated, expected, index_type)
    summary = compact_index(out, progress=False)
    compacted = Retriever.load(out, model=HashEncoder())
    assert summary.count == len(expected) and summary.rebuilt
    assert compacted.ads.column("faiss_id").to_pylist() == list(range(len(expected)))
    fresh_table = compacted.ads.select(["ad_id", "text"]).to_pandas()
    fresh = build(write_table(fresh_table, tmp_path / "final.csv"), tmp_path / "fresh", index_type)
    queries = list(expected.values())[::7] + ["ad 5 for product 4", "new ad 3 zebra3"]
    assert results(compacted, queries, index_type) == results(fresh, queries, index_type)
    assert results(updated, queries, index_type) == results(fresh, queries, index_type)


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_deleted_and_replaced_ads_are_never_returned(tmp_path: Path, index_type: str) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    before = build(tables["first"], out, index_type)
    old_texts = dict(zip(before.ads.column("ad_id").to_pylist(),
                         before.ads.column("text").to_pylist()))
    summary = update_index(out, ads=tables["update"], delete=tables["delete"],
                           model=HashEncoder(), progress=False)
    assert (summary.added, summary.replaced, summary.deleted, summary.not_found) == (30, 20, 39, 1)
    expected = final_ads(tables)
    for retriever in (Retriever.load(out, model=HashEncoder()),
                      Retriever.load(out, model=HashEncoder(), mmap=True)):
        assert len(retriever) == summary.count == len(expected)
        stale = [old_texts[f"a{i:03d}"] for i in range(20)]  # the replaced ads' old texts
        gone = [old_texts[f"a{i:03d}"] for i in range(100, 139)]
        for hits in retriever.search(stale + gone, k=len(expected),
                                     search_params=EXHAUSTIVE.get(index_type)):
            returned = [h.ad_id for h in hits]
            assert not {f"a{i:03d}" for i in range(100, 139)} & set(returned)
            assert len(returned) == len(set(returned))
        changed = retriever.search("changed ad 7", k=1)[0]
        assert (changed.ad_id, changed.text, changed.metadata) == ("a007", "changed ad 7",
                                                                    {"shop": "s9"})
    compact_index(out, progress=False)
    assert_serves_exactly(Retriever.load(out, model=HashEncoder()), expected, index_type)


def test_hnsw_keeps_removed_vectors_as_tombstones_until_compaction(tmp_path: Path) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    build(tables["first"], out, "hnsw")
    updated = update(out, tables)
    assert updated.manifest.tombstones == 59 and (out / TOMBSTONES_FILE).is_file()
    assert updated.index.ntotal == len(updated) + 59
    hits = updated.search("ad 120 for product 3", k=10)
    assert len(hits) == 10 and not any(h.ad_id == "a120" for h in hits)
    summary = compact_index(out, progress=False)
    assert summary.dropped_tombstones == 59 and summary.bytes_after < summary.bytes_before
    compacted = Retriever.load(out, model=HashEncoder())
    assert compacted.manifest.tombstones == 0 and not (out / TOMBSTONES_FILE).exists()
    assert compacted.index.ntotal == len(compacted) == len(final_ads(tables))


def test_update_keeps_the_whitening_and_rebuilds_the_lexical_index(tmp_path: Path) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    build(tables["first"], out, "flat", whiten=True, whiten_dim=8, lexical=True)
    whitening = hashlib.sha256((out / WHITENING_FILE).read_bytes()).hexdigest()
    updated = update(out, tables)
    assert hashlib.sha256((out / WHITENING_FILE).read_bytes()).hexdigest() == whitening
    assert updated.manifest.whitening == read_manifest(out).whitening
    assert len(updated.lexical) == len(updated) == len(final_ads(tables))  # type: ignore[arg-type]
    assert updated.search("zebra17", k=1, mode="lexical")[0].ad_id == "n17"
    lexical = updated.search("ad 120 for product 3", k=len(updated), mode="lexical")
    assert "a120" not in {h.ad_id for h in lexical} and len(lexical) > 100
    assert_serves_exactly(updated, final_ads(tables), "flat")  # new ads whitened as the old


def test_updates_never_reuse_an_id_and_repeat_cleanly(tmp_path: Path) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    build(tables["first"], out, "hnsw")
    update(out, tables)
    again = update(out, tables)  # the same update twice: the same ads, nothing duplicated
    assert_serves_exactly(again, final_ads(tables), "hnsw")
    ids = again.ads.column("faiss_id").to_numpy()
    assert not set(ids.tolist()) & set(again.tombstones.tolist())
    assert again.manifest.tombstones == 59 + 50  # the second update replaced all 50 again


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "nothing to update"),
        ({"ads": "update", "delete": ["n3"]}, r"ad ids \['n3'\] are both in the ads to add"),
        ({"delete": [f"a{i:03d}" for i in range(N_ADS)]}, "deletes all 300 ads"),
        ({"delete": "missing.txt"}, "no such file; give a text file with one ad id per line"),
    ],
)
def test_bad_updates_are_refused_and_change_nothing(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    build(tables["first"], out, "flat")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    given = {k: tables[v] if v == "update" else tmp_path / v if v == "missing.txt" else v
             for k, v in options.items()}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        update_index(out, model=HashEncoder(), progress=False, **given)  # type: ignore[arg-type]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_update_with_another_model_is_refused(tmp_path: Path) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    build(tables["first"], out, "flat")

    class OtherWeights(HashEncoder):
        weights_sha256 = "1" * 64

    with pytest.raises(IndexFormatError, match="built with model hash"):
        update_index(out, ads=tables["update"], model=OtherWeights(), progress=False)


def test_search_parameters_override_per_call(tmp_path: Path) -> None:
    tables = catalogue(tmp_path)
    retriever = build(tables["first"], tmp_path / "ivf", "ivf")
    ivf = faiss.extract_index_ivf(retriever.index)
    nlist = ivf.nlist
    queries = [f"ad {i} for product {i * 7 % 31}" for i in range(0, N_ADS, 3)]
    exhaustive = retriever.search(queries, k=10, search_params={"nprobe": nlist})
    narrow = retriever.search(queries, k=10, search_params={"nprobe": 1})
    assert [h.ad_id for h in exhaustive[0]] != [h.ad_id for h in narrow[0]] or any(
        [h.ad_id for h in a] != [h.ad_id for h in b] for a, b in zip(exhaustive, narrow))
    assert ivf.nprobe == retriever.manifest.search_params["nprobe"], "the index is unchanged"
    flat = build(tables["first"], tmp_path / "flat", "flat")
    with pytest.raises(ValueError, match=r"\['nprobe'\] do not apply to a IndexFlatIP index"):
        flat.search("ad 1", k=3, search_params={"nprobe": 4})


def test_update_and_compact_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = catalogue(tmp_path)
    out = tmp_path / "idx"
    build(tables["first"], out, "hnsw")
    class AnyModelIsHash(HashEncoder):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__()

    monkeypatch.setattr("retrieval.retriever.Encoder", AnyModelIsHash)
    monkeypatch.setattr("retrieval.retriever._model_for", lambda *a: "hash")
    assert main(["update", str(out), "--ads", str(tables["update"]), "--delete",
                 str(tables["delete"]), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["added"], summary["deleted"], summary["tombstones"]) == (30, 39, 59)
    assert main(["compact", str(out)]) == 0
    assert "59 removed vectors dropped" in capsys.readouterr().out
    assert main(["search", str(out), "zebra3", "--ef-search", "128", "--mmap", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["hits"]
    assert main(["update", str(out)]) == 2
    assert "nothing to update" in capsys.readouterr().err


def test_mmap_loading_answers_as_reading(tmp_path: Path) -> None:
    tables = catalogue(tmp_path)
    for index_type in INDEX_TYPES:
        out = tmp_path / index_type
        read = build(tables["first"], out, index_type)
        mapped = Retriever.load(out, model=HashEncoder(), mmap=True)
        queries = [f"ad {i} for product {i * 7 % 31}" for i in range(0, N_ADS, 10)]
        assert results(mapped, queries, index_type) == results(read, queries, index_type)
    assert np.isfinite(mapped.search_vectors(HashEncoder().encode(["x"]), 3)[0]).all()
