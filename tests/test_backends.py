"""Inference back-ends (adrecall.backends): each one's vectors and rerank scores against PyTorch
fp32 on the embedded model, ``auto``'s choice and fall-backs, the export cache, and indexes
searched with a back-end other than the one that built them."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adrecall import onnx_export
from adrecall.backend_choice import choose_backend
from adrecall.backends import BackendUnavailable, missing_reason
from retrieval.encoder import Encoder
from tests.conftest import write_table

RUNNABLE = [b for b in ("torch-bf16", "openvino", "onnx") if missing_reason(b) is None]
TEXTS = [
    "Cheap flights to Tokyo, book today and save 30%",
    "Learn Python programming online, beginner friendly courses",
    "少儿编程课程 免费试听一节",
    ("Family dentist accepting new patients this month; evening appointments, most insurance "
    "plans accepted, free parking behind the building, call to book"),
    "shoes",
]


@pytest.fixture(scope="module")
def fp32() -> Encoder:
    return Encoder(backend="torch")


def test_torch_backend_equals_sentence_transformers_encode(fp32: Encoder) -> None:
    # adrecall's own length-sorted loop must not change what sentence-transformers computes
    expected = fp32._model.encode(fp32.prepare(TEXTS), batch_size=2, normalize_embeddings=True)
    np.testing.assert_allclose(fp32.encode(TEXTS, batch_size=2), expected, atol=1e-6)


@pytest.mark.parametrize("backend", RUNNABLE)
def test_backend_vectors_agree_with_fp32(backend: str, fp32: Encoder) -> None:
    fast = Encoder(backend=backend)
    assert fast.backend == backend
    cosines = np.sum(fast.encode(TEXTS, batch_size=2) * fp32.encode(TEXTS), axis=1)
    assert cosines.min() >= 0.999, cosines
    if backend == "onnx":  # fp32 as well: the same numbers up to summation order
        assert cosines.min() >= 0.99999


@pytest.mark.parametrize("backend", RUNNABLE)
def test_backend_rerank_scores_agree_with_fp32(backend: str) -> None:
    from rerank import BertSim

    model = BertSim.from_encoder(None, seed=0)
    texts = TEXTS * 4
    reference = model.score("cheap flights", texts)  # not loaded: PyTorch fp32
    model.use_backend(backend)
    scores = model.score("cheap flights", texts)
    assert np.abs(scores - reference).max() < 0.02
    assert np.corrcoef(scores, reference)[0, 1] > 0.99


def test_encode_counts_tokens_and_keeps_input_order(fp32: Encoder) -> None:
    one_by_one = np.vstack([fp32.encode([t]) for t in TEXTS])
    result = fp32.encode_batch(TEXTS, batch_size=2)
    np.testing.assert_allclose(result.vectors, one_by_one, atol=1e-5)
    lengths = [len(fp32._tokenizer(fp32.prepare(t)[0])["input_ids"]) for t in TEXTS]
    assert result.tokens == sum(lengths)
    assert fp32.encode([]).shape == (0, fp32.dimension)


def test_missing_package_names_the_pip_extra_and_auto_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(BackendUnavailable, match=r"pip install 'adrecall\[openvino\]'"):
        Encoder(backend="openvino")
    auto = Encoder(backend="auto")
    assert auto.backend != "openvino"
    assert "skipped openvino" in auto.backend_choice.describe()


def test_auto_skips_a_backend_that_fails_or_disagrees() -> None:
    def make(name: str) -> str:
        if name == "openvino":
            raise RuntimeError("compile failed")
        return name

    runner, choice = choose_backend("auto", make, lambda r: (r != "torch-bf16", "cosine 0.9"))
    assert runner == choice.backend == "torch"
    assert "openvino: failed to load (RuntimeError: compile failed)" in choice.passed_over
    assert "torch-bf16: disagrees with fp32 (cosine 0.9)" in choice.passed_over


def test_unknown_backend_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"backend must be one of .*'openvino'.*got 'tpu'"):
        Encoder(backend="tpu")


@pytest.mark.skipif(missing_reason("onnx") is not None, reason="onnxruntime not installed")
def test_export_is_cached_by_weights_and_never_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADRECALL_CACHE_DIR", str(tmp_path))
    first = Encoder(backend="onnx")
    exported = list((tmp_path / "exports").glob("*/model.onnx"))
    assert len(exported) == 1 and exported[0].parent.name.startswith(first.weights_sha256[:24])
    assert not [p for p in (tmp_path / "exports").iterdir() if p.name.startswith(".export-")]

    def no_export(*args: object) -> None:
        raise AssertionError("exported again although the cache holds the model")

    monkeypatch.setattr(onnx_export, "_export", no_export)
    second = Encoder(backend="onnx")
    np.testing.assert_allclose(second.encode(TEXTS), first.encode(TEXTS), atol=1e-6)


@pytest.mark.skipif(missing_reason("openvino") is not None, reason="openvino not installed")
def test_openvino_encoder_is_thread_safe(fp32: Encoder) -> None:
    fast = Encoder(backend="openvino")
    expected = fast.encode(TEXTS)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(fast.encode(TEXTS))
        except BaseException as exc:  # noqa: BLE001  reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20
    for got in results:
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.skipif(not RUNNABLE, reason="no back-end besides torch fp32 on this machine")
def test_index_built_with_fp32_is_searched_with_another_backend(
    tmp_path: Path, fp32: Encoder, ads_frame: pd.DataFrame
) -> None:
    from index_build.build_job import build_index
    from retrieval.index_store import read_index_dir
    from retrieval.retriever import Retriever

    ads = write_table(ads_frame, tmp_path / "ads.csv")
    build_index(ads, tmp_path / "idx", model=fp32, progress=False)
    manifest = read_index_dir(tmp_path / "idx").manifest
    assert manifest.backend == {"backend": "torch", "requested": "torch", "agreement": None,
                                "passed_over": []}
    queries = ["cheap way to get to Tokyo", "my car makes a noise when I brake"]
    exact = Retriever.load(tmp_path / "idx", model=fp32).search(queries, k=5)
    fast = Retriever.load(tmp_path / "idx", backend=RUNNABLE[-1]).search(queries, k=5)
    for a, b in zip(exact, fast):
        assert a[0].ad_id == b[0].ad_id
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=2e-3)


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_importing_adrecall_lets_idle_openmp_threads_sleep_unless_told_otherwise(
    preset: str | None,
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import sys, os, retrieval; assert 'torch' in sys.modules and 'faiss' in sys.modules;"
            " print(os.environ['OMP_WAIT_POLICY'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == (preset or "PASSIVE")
