"""What a build records about its encoder, separable from the loaded model.

A local build reads these off its :class:`Encoder`; a cluster build gets them from a worker, so
the merging client never loads the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from adrecall.backend_choice import BackendChoice
from retrieval.encoder import Encoder


@dataclass(frozen=True)
class EncoderFacts:
    """The model's label, weights, shape and text handling, and what ran it."""

    label: str
    weights_sha256: str
    dimension: int
    max_length: int
    wobert: bool
    normalize_text: bool
    backend_choice: BackendChoice

    @classmethod
    def of(cls, encoder: Encoder) -> EncoderFacts:
        """The facts of a loaded encoder."""
        return cls(encoder.label, encoder.weights_sha256, encoder.dimension, encoder.max_length,
                   encoder.wobert, encoder.normalize_text, encoder.backend_choice)
