"""BERT-whitening: make embedding space isotropic, and optionally smaller.

Raw sentence vectors crowd into a narrow cone, so unrelated texts look alike. Whitening
subtracts the mean and multiplies by W = U·diag(1/√s), from the SVD of the covariance
(Su et al., 2021); keeping the first d' columns of W keeps the directions of most variance
and shrinks the index. Whitened vectors are re-normalised so inner product stays cosine.
The same transform must be applied to ads and queries: an index stores it and applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

WHITENING_FILE = "whitening.npz"
_EPS = 1e-9


@dataclass(frozen=True)
class Whitening:
    """An affine map ``(x - mean) @ transform`` fitted on a sample of embeddings."""

    mean: np.ndarray
    transform: np.ndarray

    @property
    def input_dim(self) -> int:
        return int(self.transform.shape[0])

    @property
    def output_dim(self) -> int:
        return int(self.transform.shape[1])

    def apply(self, vectors: np.ndarray, normalize: bool = True) -> np.ndarray:
        """Whiten ``(n, input_dim)`` vectors; unit length again unless ``normalize=False``."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.input_dim:
            raise ValueError(
                f"vectors of shape {vectors.shape} cannot be whitened: the transform expects "
                f"(n, {self.input_dim}), the encoder's raw output"
            )
        out = (vectors - self.mean) @ self.transform
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), _EPS)
        return np.ascontiguousarray(out, dtype=np.float32)

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, transform=self.transform)

    @classmethod
    def load(cls, path: str | Path) -> Whitening:
        with np.load(path, allow_pickle=False) as data:
            return cls(mean=data["mean"].astype(np.float32), transform=data["transform"].astype(np.float32))


def fit_whitening(vectors: np.ndarray, dim: int | None = None) -> Whitening:
    """Fit whitening on a sample ``(n, d)``; keep the top ``dim`` directions (default all)."""
    sample = np.asarray(vectors, dtype=np.float64)
    n, d = sample.shape if sample.ndim == 2 else (0, 0)
    if n < 2:
        raise ValueError(f"whitening needs a sample of at least 2 vectors, got shape {sample.shape}")
    if dim is None:
        dim = d
    if not 1 <= dim <= d:
        raise ValueError(f"whitening dimension must be between 1 and {d}, got {dim}")
    if n < dim:
        raise ValueError(
            f"whitening to {dim} dimensions needs at least {dim} vectors to fit on, got {n}; "
            "lower the whitening dimension or index more ads"
        )
    mean = sample.mean(axis=0)
    covariance = np.cov(sample - mean, rowvar=False)
    u, s, _ = np.linalg.svd(covariance)
    transform = u[:, :dim] / np.sqrt(s[:dim] + _EPS * s[0])
    return Whitening(mean=mean.astype(np.float32), transform=transform.astype(np.float32))
