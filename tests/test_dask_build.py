"""Builds on a Dask cluster: a 2-worker local cluster (processes, loopback, one thread each)
writes the same index as a single-process build, survives a worker killed mid-chunk, resumes
a local build's shards, and writes its shards to an fsspec store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from index_build import build_job, dask_build
from index_build.build_job import BuildSummary, build_index
from index_build.checkpoint import checkpoint_dir
from index_build.chunk_tasks import EncoderSettings, worker_encoder
from index_build.dask_build import ClusterError
from index_build.sample import sample_ads_path
from index_build.shards import ATTEMPT_TAG
from retrieval.encoder import Encoder
from retrieval.index_store import ADS_FILE, INDEX_FILE, read_manifest
from tests.conftest import write_table

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A 2-worker local cluster on 127.0.0.1; its workers keep their model between tests."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as local:
        yield local.scheduler_address


def _ads(tmp_path: Path, count: int) -> Path:
    frame = pd.read_csv(sample_ads_path()).head(count)
    return write_table(frame, tmp_path / f"ads-{count}.csv")


def _ids_and_vectors(index_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    index = faiss.read_index(str(index_dir / INDEX_FILE))
    ids = faiss.vector_to_array(index.id_map)
    return ids, index.index.reconstruct_n(0, index.ntotal)


def _assert_same_index(built: Path, reference: Path) -> None:
    ids, vectors = _ids_and_vectors(built)
    reference_ids, reference_vectors = _ids_and_vectors(reference)
    np.testing.assert_array_equal(ids, reference_ids)
    assert np.abs(vectors - reference_vectors).max() <= 1e-5
    assert pq.read_table(built / ADS_FILE).equals(pq.read_table(reference / ADS_FILE))


def test_two_worker_cluster_build_has_the_ids_and_vectors_of_a_local_build(
    tmp_path: Path, cluster: str, encoder: Encoder
) -> None:
    ads = _ads(tmp_path, 240)
    local = build_index(ads, tmp_path / "local", model=encoder, chunk_rows=40, progress=False)
    summary = build_index(ads, tmp_path / "dask", dask=cluster, backend="torch", chunk_rows=40,
                          progress=False)
    _assert_same_index(tmp_path / "dask", tmp_path / "local")
    assert summary.count == local.count == 240 and summary.retried_chunks == 0
    assert summary.cluster is not None and "2 workers" in summary.cluster
    manifest, reference = read_manifest(tmp_path / "dask"), read_manifest(tmp_path / "local")
    assert (manifest.model, manifest.model_sha256, manifest.factory, manifest.files) == (
        reference.model, reference.model_sha256, reference.factory, reference.files)
    assert manifest.backend is not None and manifest.backend["backend"] == "torch"
    assert not checkpoint_dir(tmp_path / "dask").exists()


def test_ivf_lists_found_on_the_workers_give_the_local_build_byte_for_byte(
    tmp_path: Path, cluster: str, encoder: Encoder
) -> None:
    ads = _ads(tmp_path, 400)
    options = {"index_type": "ivf", "whiten": True, "chunk_rows": 64, "progress": False}
    build_index(ads, tmp_path / "local", model=encoder, **options)
    build_index(ads, tmp_path / "dask", dask=cluster, backend="torch", **options)
    local, dask = (faiss.read_index(str(tmp_path / name / INDEX_FILE)) for name in ("local", "dask"))
    assert faiss.extract_index_ivf(local).nlist > 1
    np.testing.assert_array_equal(faiss.serialize_index(dask), faiss.serialize_index(local))


def test_a_worker_killed_mid_chunk_has_its_chunk_retried_and_every_ad_lands_once(
    tmp_path: Path, cluster: str, encoder: Encoder
) -> None:
    ads = _ads(tmp_path, 600)
    out = tmp_path / "dask"
    finished: list[BuildSummary | BaseException] = []

    def run() -> None:
        try:
            finished.append(build_index(ads, out, dask=cluster, backend="torch", chunk_rows=150,
                                        progress=False))
        except BaseException as exc:  # noqa: BLE001  handed to the test thread
            finished.append(exc)

    builder = threading.Thread(target=run)
    builder.start()
    killed = _kill_a_worker_mid_chunk(checkpoint_dir(out), builder)
    builder.join(timeout=300)
    assert finished, "the build did not finish within 300 s of a worker's death"
    summary = finished[0]
    if isinstance(summary, BaseException):
        raise summary
    assert killed is not None, "no worker was caught mid-chunk"
    assert summary.retried_chunks >= 1
    ads_table = pq.read_table(out / ADS_FILE).to_pandas()
    assert sorted(ads_table["ad_id"]) == sorted(pd.read_csv(ads)["ad_id"].astype(str))
    assert ads_table["ad_id"].is_unique and summary.count == 600
    build_index(ads, tmp_path / "local", model=encoder, chunk_rows=150, progress=False)
    _assert_same_index(out, tmp_path / "local")


def _kill_a_worker_mid_chunk(checkpoint: Path, builder: threading.Thread) -> int | None:
    """SIGKILL the worker that started a chunk whose shard is not written yet; its pid."""
    deadline = time.monotonic() + 240
    while builder.is_alive() and time.monotonic() < deadline:
        for attempt in checkpoint.glob(f"shard-*{ATTEMPT_TAG}*"):
            stem = attempt.name.split(ATTEMPT_TAG, 1)[0]
            if not (checkpoint / f"{stem}.json").exists():
                pid = int(attempt.name.split(ATTEMPT_TAG, 1)[1].rsplit("-", 2)[1])
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.02)
    return None


def _local_build_dies_at_chunk(number: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local build raises when it reaches chunk ``number``, as a killed one stops there."""
    real_embed = build_job.embed_chunk

    def dies(chunk, encoder, batch_size):  # type: ignore[no-untyped-def]
        if chunk.number == number:
            raise RuntimeError("killed")
        return real_embed(chunk, encoder, batch_size)

    monkeypatch.setattr(build_job, "embed_chunk", dies)


def test_cluster_build_resumes_the_shards_of_a_killed_local_build(
    tmp_path: Path, cluster: str, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ads = _ads(tmp_path, 120)
    out = tmp_path / "idx"
    _local_build_dies_at_chunk(2, monkeypatch)
    with pytest.raises(RuntimeError, match="killed"):
        build_index(ads, out, model=encoder, chunk_rows=30, progress=False)
    summary = build_index(ads, out, dask=cluster, backend="torch", chunk_rows=30, resume=True,
                          progress=False)
    assert summary.resumed_ads == 60 and summary.count == 120
    monkeypatch.undo()
    build_index(ads, tmp_path / "local", model=encoder, chunk_rows=30, progress=False)
    _assert_same_index(out, tmp_path / "local")


def test_shards_go_to_an_fsspec_store_and_only_the_builds_own_folder_is_removed(
    tmp_path: Path, cluster: str
) -> None:
    ads = _ads(tmp_path, 60)
    shared = tmp_path / "run"
    shared.mkdir()
    (shared / "users-notes.txt").write_text("mine")
    summary = build_index(ads, shared / "index", dask=cluster, backend="torch", chunk_rows=25,
                          shard_store=f"file://{shared}", progress=False)
    assert summary.count == 60 and read_manifest(shared / "index").count == 60
    assert sorted(p.name for p in shared.iterdir()) == ["index", "users-notes.txt"]
    assert not checkpoint_dir(shared / "index").exists()


def test_a_killed_build_resumes_from_its_shard_store_given_another_way(
    tmp_path: Path, cluster: str, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ads = _ads(tmp_path, 90)
    out = tmp_path / "idx"
    _local_build_dies_at_chunk(1, monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="killed"):
        build_index(ads, out, model=encoder, chunk_rows=30, shard_store="shards", progress=False)
    assert len(list((tmp_path / "shards").glob("adrecall-shards-*/shard-*.json"))) == 1
    summary = build_index(ads, out, dask=cluster, backend="torch", chunk_rows=30, resume=True,
                          shard_store=str(tmp_path / "shards"), progress=False)
    assert summary.resumed_ads == 30 and summary.count == 90
    assert list((tmp_path / "shards").iterdir()) == []


@pytest.mark.parametrize(("store", "message"), [
    ("", "--shard-store is empty"),
    ("foo://x", "--shard-store 'foo://x': .*give a folder or an fsspec URL"),
    ("ads-20.csv", "is a file; give a folder"),
    ("idx/shards", "is inside --out"),
])
def test_a_bad_shard_store_is_refused_before_any_work(tmp_path: Path, store: str,
                                                      message: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ads = _ads(tmp_path, 20)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        build_index(ads, tmp_path / "idx", shard_store=store, progress=False)
    assert not checkpoint_dir(tmp_path / "idx").exists() and not (tmp_path / "idx").exists()


def test_a_shard_store_the_workers_cannot_see_is_refused_before_encoding(
    tmp_path: Path, cluster: str
) -> None:
    with pytest.raises(ClusterError, match="not shared by this machine and every worker"):
        build_index(_ads(tmp_path, 20), tmp_path / "idx", dask=cluster, backend="torch",
                    shard_store="memory://adrecall-test", progress=False)
    assert not checkpoint_dir(tmp_path / "idx").exists(), "a refused first run leaves nothing"


@pytest.mark.parametrize(("options", "message"), [
    ({"dask": "tcp://127.0.0.1:1", "workers": 2}, "either dask .* or workers"),
    ({"workers": 0}, "workers must be at least 1, got 0"),
])
def test_bad_cluster_options_are_refused_by_name(tmp_path: Path, options: dict,
                                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_index(_ads(tmp_path, 20), tmp_path / "idx", progress=False, **options)


def test_a_loaded_encoder_cannot_go_to_a_cluster(tmp_path: Path, encoder: Encoder) -> None:
    with pytest.raises(ValueError, match="pass the model's directory"):
        build_index(_ads(tmp_path, 20), tmp_path / "idx", model=encoder, workers=2,
                    progress=False)


def test_a_local_cluster_listens_on_loopback_only() -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address besides loopback")
    with dask_build.dask_client(None, 1) as client:
        info = client.scheduler_info()
        addresses = [client.scheduler.address, *info["workers"],
                     *(w["nanny"] for w in info["workers"].values())]
        ports = [int(a.rsplit(":", 1)[1]) for a in addresses]
        ports += list(info["services"].values())
        assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
        for port in ports:
            with pytest.raises(OSError):
                socket.create_connection((outside, port), timeout=2).close()


def _outside_address() -> str | None:
    """This machine's address on its outward interface (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_an_unreachable_scheduler_is_named(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_build, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ClusterError, match="cannot reach a Dask scheduler at 'tcp://127.0.0.1:9'"):
        build_index(_ads(tmp_path, 20), tmp_path / "idx", dask="tcp://127.0.0.1:9",
                    progress=False)


def test_a_worker_with_other_weights_under_the_model_name_refuses_to_encode(
    encoder: Encoder,
) -> None:
    settings = EncoderSettings(None, True, "torch", torch.get_num_threads(), "0" * 64)
    with pytest.raises(ValueError, match="give every worker the same model files"):
        worker_encoder(settings)


@pytest.mark.slow
def test_build_command_on_a_new_local_cluster_reports_where_it_ran(tmp_path: Path) -> None:
    ads = _ads(tmp_path, 30)
    done = subprocess.run(
        [sys.executable, "-m", "adrecall", "build", "--ads", str(ads), "--out",
         str(tmp_path / "idx"), "--workers", "1", "--chunk-rows", "10", "--backend", "torch",
         "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["count"] == 30 and summary["cluster"].startswith("dask tcp://127.0.0.1:")
    assert ", 1 worker, 1 thread" in summary["cluster"] and summary["retried_chunks"] == 0


def test_build_command_ends_a_cluster_error_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adrecall.cli import main

    monkeypatch.setattr(dask_build, "CONNECT_TIMEOUT_S", 1)
    status = main(["build", "--ads", str(_ads(tmp_path, 20)), "--out", str(tmp_path / "idx"),
                   "--dask", "tcp://127.0.0.1:9", "--quiet"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert error.startswith("adrecall build: error: cannot reach a Dask scheduler at")
