"""Loading refuses damaged indexes and encoders that do not fit them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from transformers import BertConfig, BertModel, BertTokenizerFast

from index_build.build_job import build_index
from retrieval.encoder import Encoder
from retrieval.index_store import ADS_FILE, INDEX_FILE, MANIFEST_FILE, IndexFormatError
from retrieval.retriever import Retriever
from tests.conftest import write_table


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    from tests.conftest import ADS

    root = tmp_path_factory.mktemp("store")
    frame = pd.DataFrame({"ad_id": [a for a, _ in ADS], "text": [t for _, t in ADS]})
    build_index(write_table(frame, root / "ads.csv"), root / "idx", model=encoder, progress=False)
    return root / "idx"


@pytest.fixture
def copy_of(index_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "idx"
    copy.mkdir()
    for file in index_dir.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    return copy


def test_intact_index_loads(index_dir: Path, encoder: Encoder) -> None:
    assert len(Retriever.load(index_dir, model=encoder)) == 12


@pytest.mark.parametrize("name", [INDEX_FILE, ADS_FILE])
def test_corrupted_file_is_refused(copy_of: Path, encoder: Encoder, name: str) -> None:
    data = bytearray((copy_of / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy_of / name).write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=f"{name} fails its checksum"):
        Retriever.load(copy_of, model=encoder)


def test_manifest_records_the_adrecall_version(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    import adrecall
    from retrieval.index_store import adrecall_version, read_manifest

    installed = importlib.metadata.version("adrecall")
    assert installed == adrecall.__version__
    written = json.loads((index_dir / MANIFEST_FILE).read_text())
    assert written["adrecall_version"] == installed
    assert read_manifest(index_dir).adrecall_version == installed

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert adrecall_version() == adrecall.__version__  # a source tree without an install


def test_missing_file_is_refused(copy_of: Path, encoder: Encoder) -> None:
    (copy_of / ADS_FILE).unlink()
    with pytest.raises(IndexFormatError, match="ads.parquet is missing"):
        Retriever.load(copy_of, model=encoder)


def _edit_manifest(path: Path, **changes: object) -> None:
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest.update(changes)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_other_model_weights_are_refused(copy_of: Path, encoder: Encoder) -> None:
    _edit_manifest(copy_of, model_sha256="0" * 64)
    with pytest.raises(IndexFormatError, match="built with model default .*search it with the same model"):
        Retriever.load(copy_of, model=encoder)


def test_other_dimension_is_refused(copy_of: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny-bert"
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncheap\nflights")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(tiny)
    config = BertConfig(vocab_size=7, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(tiny)
    with pytest.raises(IndexFormatError, match="384-dimensional vectors but model .*tiny-bert makes 32"):
        Retriever.load(copy_of, model=tiny)


def test_unknown_format_version_is_refused(copy_of: Path, encoder: Encoder) -> None:
    _edit_manifest(copy_of, format_version=99)
    with pytest.raises(IndexFormatError, match="format version 99"):
        Retriever.load(copy_of, model=encoder)


def test_model_missing_from_this_machine_needs_an_explicit_model(copy_of: Path) -> None:
    _edit_manifest(copy_of, model="/nowhere/model")
    with pytest.raises(IndexFormatError, match="not on this machine; pass the model directory"):
        Retriever.load(copy_of)
