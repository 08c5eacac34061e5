"""Which index to build: a named type, or ``auto`` from the corpus size, a memory budget and a
target recall.

``auto`` takes exact ``flat`` search up to :data:`AUTO_FLAT_LIMIT` ads when it fits the
budget (a query over 20,000 vectors costs about a millisecond). Above that it tries, in order
of speed, the types whose estimated memory (:func:`retrieval.index_memory.estimate_index_bytes`)
fits: HNSW, IVF-Flat, SQ8, IVF-PQ, flat. The build tunes each in turn and keeps the first that
reaches the target recall@10; when none does, the one with the best recall, and the manifest
says the target was missed.
"""

from __future__ import annotations

from retrieval.faiss_index import INDEX_TYPES, IndexSpec, index_spec
from retrieval.index_memory import estimate_index_bytes, format_bytes

AUTO = "auto"
CHOICES = (*INDEX_TYPES, AUTO)
AUTO_FLAT_LIMIT = 20_000
AUTO_ORDER = ("hnsw", "ivf", "sq8", "ivfpq", "flat")
DEFAULT_TARGET_RECALL = 0.95


def candidate_specs(
    index_type: str, count: int, dimension: int, max_memory: int | None = None
) -> list[IndexSpec]:
    """The specs a build tries, in order: one for a named type (refused when over
    ``max_memory`` bytes), the fitting ones for ``auto``."""
    if index_type not in CHOICES:
        raise ValueError(f"unknown index type {index_type!r}; choose one of {', '.join(CHOICES)}")
    if index_type != AUTO:
        spec = index_spec(index_type, count, dimension)
        _check_fits(spec, count, dimension, max_memory)
        return [spec]
    order = ("flat",) if count <= AUTO_FLAT_LIMIT else AUTO_ORDER
    if count <= AUTO_FLAT_LIMIT and not _fits(index_spec("flat", count, dimension), count,
                                               dimension, max_memory):
        order = AUTO_ORDER
    specs = [index_spec(t, count, dimension) for t in order if _allowed(t, count)]
    fitting = [s for s in specs if _fits(s, count, dimension, max_memory)]
    if not fitting:
        smallest = min(specs, key=lambda s: estimate_index_bytes(s, count, dimension))
        _check_fits(smallest, count, dimension, max_memory)
    return fitting


def _allowed(index_type: str, count: int) -> bool:
    try:
        index_spec(index_type, count, 4)
    except ValueError:  # too few ads to train it
        return False
    return True


def _fits(spec: IndexSpec, count: int, dimension: int, max_memory: int | None) -> bool:
    return max_memory is None or estimate_index_bytes(spec, count, dimension) <= max_memory


def _check_fits(spec: IndexSpec, count: int, dimension: int, max_memory: int | None) -> None:
    if not _fits(spec, count, dimension, max_memory):
        needed = estimate_index_bytes(spec, count, dimension)
        raise ValueError(
            f"a {spec.index_type} index of {count:,} ads of dimension {dimension} needs about "
            f"{format_bytes(needed)}, over --max-memory {format_bytes(max_memory or 0)}; raise "
            "--max-memory or choose a smaller type (sq8, ivfpq), or --index-type auto"
        )
