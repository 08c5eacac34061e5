"""A shared Retriever (and its encoder and reranker) under concurrent searches.

Queries longer than the model's limit make the encoder count truncated texts; that count must
not disturb the tokenizer that other threads are encoding with at the same moment. A reranker
scored from several threads must not switch the model's mode under another thread's feet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from index_build.build_job import build_index
from index_build.sample import sample_ads_path, sample_queries_path
from rerank import BertSim
from retrieval.encoder import Encoder
from retrieval.retriever import Hit, Retriever
from tests.conftest import TINY_WORDS, write_table

THREADS = 8
ROUNDS = 3  # every query this many times
LONG_SIZES = np.linspace(1_500, 10_000, 12).astype(int).tolist()  # characters


@pytest.fixture
def slow_settings(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pause for a moment after every call sets the shared tokenizer's truncation and padding.

    The pause only widens the window in which another thread may change those settings before
    this thread tokenises with them: an encoder that never changes them on the shared tokenizer
    is unaffected, one that does fails in nearly every run instead of rarely.
    """
    tokenizer = encoder._tokenizer
    set_state = tokenizer.set_truncation_and_padding

    def set_then_pause(*args: Any, **kwargs: Any) -> None:
        set_state(*args, **kwargs)
        time.sleep(0.05)

    monkeypatch.setattr(tokenizer, "set_truncation_and_padding", set_then_pause)


@pytest.fixture(scope="module")
def sample_retriever(encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """A flat index of every thirtieth ad of the shipped sample catalogue (both languages)."""
    frame = pd.read_csv(sample_ads_path(), dtype=str, keep_default_na=False).iloc[::30]
    ads = write_table(frame, tmp_path_factory.mktemp("ads") / "ads.parquet")
    out = tmp_path_factory.mktemp("idx") / "idx"
    build_index(ads, out, model=encoder, progress=False)
    return Retriever.load(out, model=encoder)


def _mixed_queries() -> list[str]:
    """Four short sample queries (English and Chinese) and twelve of 1,500 to 10,000 characters
    (English ads of the catalogue run together), interleaved."""
    with open(sample_queries_path(), encoding="utf-8") as handle:
        sample = [json.loads(line)["text"] for line in handle if line.strip()]
    short = [sample[0], sample[1], sample[22], sample[23]]
    ads = pd.read_csv(sample_ads_path(), dtype=str, keep_default_na=False)["text"].tolist()
    long = [" ".join(ads[i * 100 : i * 100 + 200])[:size] for i, size in enumerate(LONG_SIZES)]
    return [q for i, s in enumerate(short) for q in (s, *long[i * 3 : i * 3 + 3])]


def _key(hits: list[Hit]) -> tuple[list[str], np.ndarray]:
    return [h.ad_id for h in hits], np.array([h.score for h in hits])


def test_retriever_is_thread_safe_with_long_queries(
    sample_retriever: Retriever, slow_settings: None
) -> None:
    queries = _mixed_queries()
    assert sorted(len(q) for q in queries)[4:] == LONG_SIZES
    expected = [_key(sample_retriever.search(q, k=5)) for q in queries]
    tasks = [i for _ in range(ROUNDS) for i in range(len(queries))]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        got = list(pool.map(lambda i: _key(sample_retriever.search(queries[i], k=5)), tasks))
    for i, (ids, scores) in zip(tasks, got):
        want_ids, want_scores = expected[i]
        assert ids == want_ids, f"query {i} ({len(queries[i])} characters)"
        np.testing.assert_allclose(scores, want_scores, atol=1e-5, err_msg=f"query {i}")


def test_truncation_count_is_right_under_concurrent_encoding(
    encoder: Encoder, slow_settings: None
) -> None:
    queries = _mixed_queries()
    expected = [encoder.encode_batch(q).truncated for q in queries]
    assert sum(expected) == len(LONG_SIZES)  # every long query, and no short one
    tasks = [i for _ in range(ROUNDS) for i in range(len(queries))]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        got = list(pool.map(lambda i: encoder.encode_batch(queries[i]).truncated, tasks))
    assert got == [expected[i] for i in tasks]


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Eight threads of a tiny model each on one torch thread (not contending for two cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_bertsim_scores_are_thread_safe_from_training_mode(
    tiny_model_dir: Path, one_torch_thread: None
) -> None:
    """A BertSim fresh from ``from_encoder`` (training mode, dropout on) scores the same from
    eight threads as from one: no call may switch dropout back on while another scores."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(TINY_WORDS, rng.integers(2, 60))) for _ in range(20)]
    queries = [" ".join(rng.choice(TINY_WORDS, rng.integers(1, 40))) for _ in range(16)]
    tasks = [i for _ in range(ROUNDS) for i in range(len(queries))]
    for trial in range(3):  # one trial in five passed before the fix
        model = BertSim.from_encoder(tiny_model_dir, max_length=32)
        expected = [model.score(q, texts) for q in queries]
        model.train()
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            got = list(pool.map(lambda i, m=model: m.score(queries[i], texts), tasks))
        for i, scores in zip(tasks, got):
            np.testing.assert_allclose(scores, expected[i], atol=1e-6, err_msg=f"trial {trial}")
