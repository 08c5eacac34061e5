"""The shape every training entry point's result shares.

``train_reranker``, ``train_encoder``, ``extend_vocabulary``, ``pretrain`` and ``distill`` each
return a dataclass that extends :class:`RunSummary`: where the result was written, which model
the run started from and how long it took, then the step's own figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RunSummary:
    """What every training run reports first."""

    out: str
    """The folder the run wrote."""
    model: str
    """The model the run started from, as recorded (:func:`adrecall.models.model_label`:
    ``"default"`` or an absolute path)."""
    seconds: float
    """Wall-clock seconds the run took (across resumes where the step resumes)."""

    def to_dict(self) -> dict:
        """Every field, as plain JSON-ready values (nested dataclasses become dicts)."""
        return asdict(self)
