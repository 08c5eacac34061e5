"""The learning-rate schedule of every training loop that drives its own optimizer (BertSim
reranker training, domain-adaptive pre-training, distillation): linear warm-up, then linear
decay to 0.

One step-counting convention, used by every caller:

* ``total_steps`` is the number of optimizer steps of the whole run (all epochs, or
  ``max_steps``; a resumed run counts the steps taken before it stopped).
* ``warmup_steps = ceil(warmup_ratio × total_steps)`` (:func:`warmup_steps`).
* ``step`` is the 1-based number of the optimizer step about to be taken, ``1..total_steps``
  (a loop that counts steps already taken from 0 passes ``taken + 1``).

So the first step learns at ``1 / warmup_steps`` of the base rate, step ``warmup_steps`` is
the peak (× 1.0), and the rate then falls linearly to exactly 0 at step ``total_steps``.
Without warm-up the first step runs at ``(total_steps - 1) / total_steps``.

The bi-encoder fine-tuning (:mod:`encoder_training.finetune`) runs inside the
sentence-transformers trainer, whose own scheduler this module does not replace.
"""

from __future__ import annotations

import math
from typing import Any


def warmup_steps(total_steps: int, ratio: float) -> int:
    """Warm-up steps for ``ratio`` (0..1) of ``total_steps`` optimizer steps, rounded up."""
    if total_steps < 0 or not 0.0 <= ratio <= 1.0:
        raise ValueError(
            f"need total_steps >= 0 and 0 <= ratio <= 1, got {total_steps} and {ratio}"
        )
    return math.ceil(total_steps * ratio)


def lr_multiplier(step: int, total_steps: int, warmup_steps: int) -> float:
    """Factor on the base learning rate for optimizer step ``step`` (1-based, see the module
    docstring): ``step / warmup_steps`` up to and including step ``warmup_steps`` (the peak,
    1.0), then ``(total_steps - step) / (total_steps - warmup_steps)``, 0.0 at the last step.
    A run that is all warm-up (``warmup_steps >= total_steps``) never decays."""
    if warmup_steps and step <= warmup_steps:
        return step / warmup_steps
    remaining = total_steps - warmup_steps
    return max(0.0, (total_steps - step) / remaining) if remaining > 0 else 1.0


def set_lr(optimizer: Any, multiplier: float) -> float:
    """Set every parameter group's ``lr`` to its ``base_lr`` × ``multiplier``; returns the
    first group's new rate (for progress bars and logs)."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * multiplier
    return float(optimizer.param_groups[0]["lr"])
