"""BERT-whitening on its own, then inside an index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index_build.build_job import build_index
from index_build.sample import sample_ads_path
from retrieval.encoder import Encoder
from retrieval.index_store import IndexFormatError
from retrieval.retriever import Retriever
from retrieval.whitening import WHITENING_FILE, Whitening, fit_whitening
from tests.conftest import write_table


def anisotropic_sample(n: int = 20_000, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.linspace(3.0, 0.05, d)  # very unequal variances
    return rng.normal(size=(n, d)) @ mixing.T + 10.0  # far from the origin: a narrow cone


def test_whitened_sample_has_identity_covariance() -> None:
    sample = anisotropic_sample()
    whitened = fit_whitening(sample).apply(sample, normalize=False)
    np.testing.assert_allclose(whitened.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.cov(whitened, rowvar=False), np.eye(16), atol=2e-3)


def test_reduced_whitening_keeps_the_top_directions() -> None:
    sample = anisotropic_sample()
    whitening = fit_whitening(sample, dim=4)
    whitened = whitening.apply(sample, normalize=False)
    assert whitened.shape == (20_000, 4)
    np.testing.assert_allclose(np.cov(whitened, rowvar=False), np.eye(4), atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(whitening.apply(sample), axis=1), 1.0, atol=1e-5)


def test_whitening_lowers_the_mean_cosine_of_random_pairs() -> None:
    sample = anisotropic_sample()
    unit = sample / np.linalg.norm(sample, axis=1, keepdims=True)
    whitened = fit_whitening(sample).apply(sample)
    assert float(np.mean(np.sum(unit[:5000] * unit[5000:10000], axis=1))) > 0.5
    assert abs(float(np.mean(np.sum(whitened[:5000] * whitened[5000:10000], axis=1)))) < 0.05


def test_save_load_round_trip(tmp_path: Path) -> None:
    whitening = fit_whitening(anisotropic_sample(n=500), dim=8)
    whitening.save(tmp_path / "w.npz")
    loaded = Whitening.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(loaded.transform, whitening.transform)
    np.testing.assert_array_equal(loaded.mean, whitening.mean)


@pytest.mark.parametrize(
    ("shape", "dim", "message"),
    [((1, 8), None, "at least 2 vectors"), ((100, 8), 9, "between 1 and 8"), ((5, 8), 6, "at least 6 vectors")],
)
def test_bad_fits_are_refused(shape: tuple[int, int], dim: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_whitening(np.ones(shape), dim=dim)


@pytest.fixture(scope="module")
def whitened_index(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> tuple[Path, pd.DataFrame]:
    frame = pd.read_csv(sample_ads_path(), dtype=str, keep_default_na=False).iloc[::5].head(600)
    root = tmp_path_factory.mktemp("whitened")
    build_index(write_table(frame, root / "ads.csv"), root / "idx", model=encoder, whiten=True,
                whiten_dim=128, progress=False)
    return root / "idx", frame.reset_index(drop=True)


def test_whitened_index_round_trips_to_the_same_results(
    whitened_index: tuple[Path, pd.DataFrame], encoder: Encoder
) -> None:
    path, frame = whitened_index
    retriever = Retriever.load(path, model=encoder)
    assert retriever.manifest.dimension == 128 and retriever.manifest.model_dimension == 384
    assert retriever.manifest.whitening == {"dim": 128, "fit_count": 600}
    whitening = Whitening.load(path / WHITENING_FILE)
    ads = whitening.apply(encoder.encode(frame["text"].tolist()))
    queries = ["cheap way to get to Tokyo", "fix my brakes", "学英语"]
    expected = whitening.apply(encoder.encode(queries)) @ ads.T
    for row, hits in enumerate(retriever.search(queries, k=7)):
        top = np.argsort(-expected[row])[:7]
        assert [h.ad_id for h in hits] == frame["ad_id"].iloc[top].tolist()
        np.testing.assert_allclose([h.score for h in hits], expected[row, top], atol=1e-4)


def test_whitened_index_applies_whitening_to_raw_query_vectors(
    whitened_index: tuple[Path, pd.DataFrame], encoder: Encoder
) -> None:
    retriever = Retriever.load(whitened_index[0], model=encoder)
    raw = encoder.encode(["fix my brakes"])
    scores, _ = retriever.search_vectors(raw, 3)
    assert scores.shape == (1, 3)
    with pytest.raises(ValueError, match=r"expected \(n, 384\)"):
        retriever.search_vectors(np.ones((1, 128), dtype=np.float32), 3)


def test_whitened_index_without_its_transform_is_refused(
    whitened_index: tuple[Path, pd.DataFrame], encoder: Encoder, tmp_path: Path
) -> None:
    copy = tmp_path / "idx"
    copy.mkdir()
    for file in whitened_index[0].iterdir():
        if file.name != WHITENING_FILE:
            (copy / file.name).write_bytes(file.read_bytes())
    with pytest.raises(IndexFormatError, match="whitening.npz is missing"):
        Retriever.load(copy, model=encoder)
