"""The batch build job: checkpoints, resume without duplicates, atomic replacement."""

from __future__ import annotations

from pathlib import Path

import faiss
import pandas as pd
import pyarrow.parquet as pq
import pytest

from adrecall.backends import auto_skip_reason
from index_build import build_job
from index_build.build_job import build_index
from index_build.checkpoint import CheckpointError, checkpoint_dir
from retrieval.encoder import Encoder
from retrieval.index_store import ADS_FILE, MANIFEST_FILE, read_manifest
from retrieval.retriever import Retriever
from tests.conftest import write_table


@pytest.fixture
def ads_csv(tmp_path: Path, ads_frame: pd.DataFrame) -> Path:
    return write_table(ads_frame, tmp_path / "ads.csv")


def test_summary_and_manifest(tmp_path: Path, ads_csv: Path, encoder: Encoder) -> None:
    out = tmp_path / "idx"
    summary = build_index(ads_csv, out, model=encoder, chunk_rows=5, progress=False)
    assert (summary.count, summary.dimension, summary.index_type) == (12, 384, "flat")
    assert summary.bytes_on_disk > 12 * 384 * 4 and summary.resumed_ads == 0
    manifest = read_manifest(out)
    assert manifest.model == "default" and manifest.model_sha256 == encoder.weights_sha256
    assert manifest.count == 12 and manifest.metric == "inner_product"
    assert manifest.factory == "IDMap2,Flat" and manifest.normalize_text is True
    assert set(manifest.files) == {"index.faiss", "ads.parquet"}
    assert next(iter(manifest.sources.values())) != ""
    assert not checkpoint_dir(out).exists(), "the checkpoint is removed after a successful build"


def test_killed_build_resumes_with_every_ad_exactly_once(
    tmp_path: Path, ads_csv: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "idx"
    encoded_chunks: list[int] = []
    real_embed = build_job.embed_chunk

    def dies_on_third_chunk(chunk, enc, batch_size):  # type: ignore[no-untyped-def]
        if chunk.number == 2:
            raise RuntimeError("killed")
        encoded_chunks.append(chunk.number)
        return real_embed(chunk, enc, batch_size)

    monkeypatch.setattr(build_job, "embed_chunk", dies_on_third_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        build_index(ads_csv, out, model=encoder, chunk_rows=3, progress=False)
    assert not out.exists()
    assert len(list(checkpoint_dir(out).glob("shard-*.json"))) == 2

    with pytest.raises(CheckpointError, match="pass --resume"):
        build_index(ads_csv, out, model=encoder, chunk_rows=3, progress=False)
    with pytest.raises(CheckpointError, match="chunk_rows: was 3, now 4"):
        build_index(ads_csv, out, model=encoder, chunk_rows=4, resume=True, progress=False)
    if auto_skip_reason("torch-bf16") is None:  # shards of one engine are not mixed with another's
        with pytest.raises(CheckpointError, match="backend: was 'torch', now 'torch-bf16'"):
            build_index(ads_csv, out, backend="torch-bf16", chunk_rows=3, resume=True,
                        progress=False)

    encoded_chunks.clear()
    monkeypatch.setattr(build_job, "embed_chunk", lambda c, e, b: (encoded_chunks.append(c.number), real_embed(c, e, b))[1])
    summary = build_index(ads_csv, out, model=encoder, chunk_rows=3, resume=True, progress=False)
    assert encoded_chunks == [2, 3], "only the unfinished chunks are encoded again"
    assert summary.resumed_ads == 6 and summary.count == 12

    ads = pq.read_table(out / ADS_FILE).to_pandas()
    assert sorted(ads["ad_id"]) == sorted(pd.read_csv(ads_csv)["ad_id"])
    assert ads["faiss_id"].is_unique and ads["ad_id"].is_unique
    retriever = Retriever.load(out, model=encoder)
    faiss_ids = faiss.vector_to_array(retriever.index.id_map)
    assert len(faiss_ids) == 12 and len(set(faiss_ids.tolist())) == 12
    texts = pd.read_csv(ads_csv)["text"].tolist()
    top = retriever.search(texts, k=1)
    assert [hits[0].ad_id for hits in top] == pd.read_csv(ads_csv)["ad_id"].tolist()
    assert all(abs(hits[0].score - 1.0) < 1e-4 for hits in top)


def test_failed_write_leaves_the_previous_index_loadable(
    tmp_path: Path, ads_csv: Path, ads_frame: pd.DataFrame, encoder: Encoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "idx"
    build_index(ads_csv, out, model=encoder, progress=False)
    before = (out / MANIFEST_FILE).read_text()
    bigger = write_table(pd.concat([ads_frame, ads_frame.assign(ad_id=ads_frame["ad_id"] + "-b")]), tmp_path / "more.csv")

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(build_job, "write_manifest", crash)
    with pytest.raises(OSError, match="disk full"):
        build_index(bigger, out, model=encoder, progress=False)
    assert (out / MANIFEST_FILE).read_text() == before
    assert len(Retriever.load(out, model=encoder)) == 12
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".idx")] == []
    monkeypatch.undo()
    summary = build_index(bigger, out, model=encoder, resume=True, progress=False)
    assert summary.resumed_ads == 24 and len(Retriever.load(out, model=encoder)) == 24


def test_output_that_is_not_an_index_is_not_replaced(tmp_path: Path, ads_csv: Path, encoder: Encoder) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds files adrecall did not write"):
        build_index(ads_csv, out, model=encoder, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_bad_table_fails_before_the_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ads.csv"
    path.write_text("ad_id,text\na1,one\na1,two\n")
    monkeypatch.setattr(build_job, "Encoder", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(ValueError, match="appears twice"):
        build_index(path, tmp_path / "idx", progress=False)
