"""A stand-in bi-encoder for build tests that need no real model: nothing to load, so a build
in a fresh subprocess starts in about a second."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from adrecall.backend_choice import BackendChoice
from retrieval.encoder import Encoder, EncodeResult


class HashEncoder(Encoder):
    """Maps each model text to a fixed pseudo-random unit vector of 16 dimensions."""

    dimension = 16
    max_length = 64
    weights_sha256 = "0" * 64
    wobert = False
    backend_choice = BackendChoice("hash", "hash")

    def __init__(self, normalize_text: bool = True) -> None:  # no model, on purpose
        self.normalize_text = normalize_text
        self.label = "hash"
        self.model_dir = Path(__file__)  # "the model" a build must not write into

    def encode_batch(
        self, texts: str | list[str], *, batch_size: int = 128, normalize: bool = True
    ) -> EncodeResult:
        vectors = []
        for text in self.prepare(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).normal(size=self.dimension)
            vectors.append(vector / np.linalg.norm(vector))
        return EncodeResult(np.asarray(vectors, dtype=np.float32), 0)
