"""Numeric precision of CPU inference and training: ``"fp32"`` or ``"bf16"`` autocast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def autocast(precision: str) -> Iterator[None]:
    """bf16 autocast on CPU for ``"bf16"`` (the AMX matrix units), nothing for ``"fp32"``."""
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield
