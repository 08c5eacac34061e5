"""Idle OpenMP threads sleep instead of spinning, set before PyTorch or FAISS loads.

PyTorch and FAISS each ship their own OpenMP runtime. By default an OpenMP worker spins for a
while after each parallel region, waiting for more work; with two runtimes in one process (the
encoder in PyTorch, the search in FAISS) each one's spinning workers take the cores the other
needs. Measured on 2 cores: single-query ``Retriever.search`` from the main thread, p50 996 ms
spinning against 14.7 ms with ``OMP_WAIT_POLICY=PASSIVE``. The runtimes read the variable when
they load, so every adrecall package imports this module (through ``adrecall``) before
anything imports torch or faiss. A value the user set is kept; a program that imported torch
or faiss before adrecall should set ``OMP_WAIT_POLICY=PASSIVE`` itself.
"""

from __future__ import annotations

import os


def quiet_idle_threads() -> None:
    """Default ``OMP_WAIT_POLICY`` to ``PASSIVE`` (a value already set is kept)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
