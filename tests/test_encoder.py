"""The bi-encoder on the real embedded model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from adrecall.models import default_model_dir
from retrieval.encoder import Encoder


def test_vectors_are_normalised_float32(encoder: Encoder) -> None:
    vectors = encoder.encode(["cheap flights", "hotel deals", "python course"], batch_size=2)
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, encoder.dimension) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_meaning_beats_word_overlap(encoder: Encoder) -> None:
    query, near, far = encoder.encode(
        ["cheap way to get to Tokyo", "Discount airline tickets to Japan", "cheap way to get fit"]
    )
    assert query @ near > query @ far - 0.1  # the paraphrase is at least competitive
    assert query @ near > 0.4


def test_same_normalisation_for_every_text(encoder: Encoder) -> None:
    a, b = encoder.encode(["Sale!!! Flights -> Tokyo https://x.example/p?q=1", "Sale Flights Tokyo"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_normalisation_can_be_switched_off() -> None:
    raw = Encoder(normalize_text=False, backend="torch")
    a, b = raw.encode(["Sale!!! Flights -> Tokyo", "Sale Flights Tokyo"])
    assert not np.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        (["fine", None], ValueError, "row 1 is None"),
        (["fine", ""], ValueError, "row 1 is empty"),
        ([b"bytes"], TypeError, "row 0 is a bytes"),
    ],
)
def test_bad_texts_name_the_row(encoder: Encoder, texts: list, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        encoder.encode(texts)


def test_truncated_texts_are_counted_and_reported(encoder: Encoder) -> None:
    long_text = " ".join(["advertising"] * 400)
    result = encoder.encode_batch(["short ad", long_text, long_text + " more"])
    assert result.truncated == 2
    with pytest.warns(UserWarning, match="2 of 3 texts exceeded 256 tokens"):
        encoder.encode(["short ad", long_text, long_text + " more"])


def test_plain_hugging_face_directory_gets_mean_pooling(tmp_path: Path, encoder: Encoder) -> None:
    plain = tmp_path / "plain-bert"
    plain.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "vocab.txt", "special_tokens_map.json"):
        shutil.copy(default_model_dir() / name, plain / name)
    texts = ["cheap flights to tokyo", "family dentist"]
    plain_encoder = Encoder(plain, max_length=encoder.max_length, backend="torch")
    np.testing.assert_allclose(plain_encoder.encode(texts), encoder.encode(texts), atol=1e-5)


def test_missing_model_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        Encoder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="neither config.json nor modules.json"):
        Encoder(tmp_path)


def test_text_that_normalisation_empties_is_embedded_as_written(encoder: Encoder) -> None:
    """One rule for every model input (adrecall.textnorm.model_text): no refusal, no empty text."""
    assert encoder.prepare(["Привет мир", "fine!"]) == ["Привет мир", "fine"]
    vectors = encoder.encode(["Привет мир", "Пока", "fine"])
    assert np.isfinite(vectors).all() and not np.allclose(vectors[0], vectors[1])
