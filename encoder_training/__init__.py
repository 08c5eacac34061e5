"""Bi-encoder diagnostics and fine-tuning (issue 4: anisotropy, whitening, training).

Modules, each one concern:

* ``pairs``: read and validate labelled ``(query, text, label)`` tables, split them by query.
* ``pooling_variants``: one forward pass, four sentence vectors per text (raw CLS, mean,
  first-last average, the model's own sentence pooling).
* ``diagnostics``: anisotropy figures per pooling variant, a text/JSON report and a PNG
  histogram (``adrecall diagnose``).
* ``finetune``: sentence-transformers training with MultipleNegativesRankingLoss (with hard
  negatives mined from a built index by :mod:`adrecall.hard_negatives`) or CoSENT, dev evaluation each epoch, best checkpoint kept
  (``adrecall train-encoder``).
* ``tiny_model``: a tiny random BERT sentence-transformers folder for smoke tests.

Heavy libraries (torch, sentence-transformers) are imported inside the functions that use
them, so ``adrecall --help`` stays fast; the names below are imported lazily for the same
reason.

    from encoder_training import TrainEncoderConfig, diagnose, train_encoder
    summary = train_encoder("pairs.csv", "models/tuned", index="idx",
                            config=TrainEncoderConfig(epochs=1, progress=False))
    summary.out, summary.model, summary.seconds, summary.best  # see adrecall.run_summary
"""

from __future__ import annotations

from adrecall.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "encoder_training.finetune": ("TrainEncoderConfig", "TrainEncoderSummary", "train_encoder"),
        "encoder_training.diagnostics": ("DiagnosticsReport", "diagnose"),
        "encoder_training.pairs": (
            "PairColumns",
            "Pairs",
            "PairsError",
            "pairs_from_lists",
            "read_pairs",
        ),
    },
)
