"""Vectors on the wire: JSON number lists, or base64 of little-endian float32 bytes (exact
and about 4x smaller), the two ``encoding_format`` values of the OpenAI embeddings API. The
client imports this module too, so both ends agree on the bytes."""

from __future__ import annotations

import base64

import numpy as np

_WIRE = np.dtype("<f4")


def encode_vectors(vectors: np.ndarray, encoding_format: str) -> list[list[float]] | list[str]:
    """Each row of ``vectors`` as a list of floats (``"float"``) or a base64 string."""
    if encoding_format == "base64":
        return [base64.b64encode(row.astype(_WIRE).tobytes()).decode("ascii") for row in vectors]
    return [[float(x) for x in row] for row in vectors.astype(np.float32)]


def decode_vectors(rows: list[list[float]] | list[str], dimension: int) -> np.ndarray:
    """The float32 ``(len(rows), dimension)`` array :func:`encode_vectors` encoded."""
    if not rows:
        return np.zeros((0, dimension), dtype=np.float32)
    if isinstance(rows[0], str):
        flat = b"".join(base64.b64decode(row) for row in rows)  # type: ignore[arg-type]
        array = np.frombuffer(flat, dtype=_WIRE).astype(np.float32)
    else:
        array = np.asarray(rows, dtype=np.float32)
    return array.reshape(len(rows), dimension)
