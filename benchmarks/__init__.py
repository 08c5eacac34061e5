"""Benchmarks of adrecall (python -m benchmarks.X from the repository root)."""

import adrecall  # noqa: F401  (first: idle OpenMP threads sleep; adrecall.idle_threads)
