"""Loading cross-checks the manifest against the files it describes: metric and factory against
the FAISS index, normalisation, model and whitening against the stored vectors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from adrecall.checksums import file_sha256
from index_build.build_job import build_index
from retrieval.encoder import Encoder
from retrieval.index_store import MANIFEST_FILE, IndexFormatError
from retrieval.retriever import Retriever
from retrieval.whitening import WHITENING_FILE, fit_whitening
from tests.conftest import ADS, write_table


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checked")
    frame = pd.DataFrame({"ad_id": [a for a, _ in ADS], "text": [t for _, t in ADS]})
    ads = write_table(frame, root / "ads.csv")
    indexes = {}
    for name in ("flat", "hnsw", "ivf"):
        indexes[name] = root / name
        build_index(ads, indexes[name], model=encoder, index_type=name, progress=False)
    indexes["whitened"] = root / "whitened"
    build_index(
        ads, indexes["whitened"], model=encoder, whiten=True, whiten_dim=8, progress=False
    )
    return indexes


CopyOf = Callable[[str], Path]


@pytest.fixture
def copy_of(built: dict[str, Path], tmp_path: Path) -> CopyOf:
    def copy(name: str) -> Path:
        return Path(shutil.copytree(built[name], tmp_path / name))

    return copy


def _edit_manifest(path: Path, **changes: object) -> None:
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest.update(changes)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["flat", "hnsw", "ivf", "whitened"])
def test_intact_indexes_load_and_find_each_ad_first(
    built: dict[str, Path], encoder: Encoder, name: str
) -> None:
    retriever = Retriever.load(built[name], model=encoder)
    top = retriever.search([text for _, text in ADS], k=1)
    assert [hits[0].ad_id for hits in top] == [ad_id for ad_id, _ in ADS]


def test_edited_metric_is_refused(copy_of: CopyOf, encoder: Encoder) -> None:
    path = copy_of("flat")
    _edit_manifest(path, metric="l2")
    with pytest.raises(
        IndexFormatError, match="metric is 'l2' and the FAISS index measures 'inner_product'"
    ):
        Retriever.load(path, model=encoder)


@pytest.mark.parametrize(
    ("name", "factory", "message"),
    [
        ("flat", "IDMap2,HNSW32,Flat", "builds IndexIDMap2 d=384 > IndexHNSWFlat"),
        ("hnsw", "IDMap2,HNSW16,Flat", "IndexHNSWFlat d=384 M=16 .* holds .* M=32"),
        ("ivf", "IDMap2,IVF2,Flat", "nlist=2 .* holds .* nlist=1"),
        ("flat", "IDMap2,Nonsense", "FAISS cannot build the factory string 'IDMap2,Nonsense'"),
    ],
)
def test_edited_factory_is_refused(
    copy_of: CopyOf, encoder: Encoder, name: str, factory: str, message: str
) -> None:
    path = copy_of(name)
    _edit_manifest(path, factory=factory)
    with pytest.raises(IndexFormatError, match=message):
        Retriever.load(path, model=encoder)


def test_edited_normalize_text_is_refused(copy_of: CopyOf) -> None:
    """Without a model given, the encoder follows the manifest: here, no normalisation."""
    path = copy_of("flat")
    _edit_manifest(path, normalize_text=False)
    with pytest.raises(
        IndexFormatError, match=r"normalize_text=False\) has cosine 0\.\d+ to its vector"
    ):
        Retriever.load(path)


def test_swapped_whitening_is_refused(copy_of: CopyOf, encoder: Encoder) -> None:
    path = copy_of("whitened")
    other = encoder.encode([f"{text} and more" for _, text in ADS])
    fit_whitening(other, 8).save(path / WHITENING_FILE)
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    _edit_manifest(
        path, files={**manifest["files"], WHITENING_FILE: file_sha256(path / WHITENING_FILE)}
    )
    with pytest.raises(IndexFormatError, match="whitened\\) has cosine"):
        Retriever.load(path, model=encoder)
