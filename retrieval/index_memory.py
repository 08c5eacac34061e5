"""Memory budgets: read ``--max-memory 2G`` and estimate what a FAISS index of n vectors holds.

Estimates count the vector codes, the IVF centroids, the HNSW graph and the ``IDMap2`` id
tables (an array and a hash map: about 60 bytes per vector, measured with FAISS 1.15), which is
what a loaded index keeps in RAM; the ads table and the model are not counted.
"""

from __future__ import annotations

import re

from retrieval.faiss_index import HNSW_NEIGHBOURS, IVF_TYPES, IndexSpec, ivf_list_count

ID_MAP_BYTES = 60
"""Per vector: IDMap2's int64 id array plus its id → position hash map."""
HNSW_LINK_BYTES = 2 * HNSW_NEIGHBOURS * 4 + 16
"""Per vector: level-0 links (2·M int32) plus the upper levels and level table, on average
(an HNSW32 of 200,000 4-dimensional vectors held 282 bytes per vector, 16 of them the vector)."""
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_BUDGET = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_memory(text: str | int) -> int:
    """Bytes in ``"512M"``, ``"2G"``, ``"1.5GiB"``, ``"800KB"`` or a plain number of bytes;
    the units are binary (1K = 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = _BUDGET.fullmatch(str(text))
        if match is None:
            raise ValueError(f"memory budget {text!r} is not a size; write it like 512M, 2G or "
                             "1.5GiB (binary units: 1K = 1024 bytes)")
        value, unit = float(match.group(1)), match.group(2).upper()
    if value <= 0:
        raise ValueError(f"memory budget {text!r} must be more than 0 bytes")
    return int(value * _UNITS[unit])


def format_bytes(count: float) -> str:
    """``count`` bytes as a short binary size (``"1.4 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def estimate_index_bytes(spec: IndexSpec, count: int, dimension: int) -> int:
    """What an index of ``spec`` holds in memory for ``count`` vectors of ``dimension``."""
    per_vector = ID_MAP_BYTES
    fixed = 0
    if spec.index_type in IVF_TYPES:
        fixed += ivf_list_count(spec.factory) * dimension * 4  # the coarse centroids
        per_vector += 8  # each list entry's id
    if spec.index_type in ("flat", "ivf"):
        per_vector += dimension * 4
    elif spec.index_type == "hnsw":
        per_vector += dimension * 4 + HNSW_LINK_BYTES
    elif spec.index_type == "sq8":
        per_vector += dimension
        fixed += dimension * 2 * 4  # per-dimension minimum and range
    elif spec.index_type == "ivfpq":
        subquantizers = int(spec.factory.split(",PQ")[1].split("x")[0])
        per_vector += subquantizers
        fixed += dimension * 256 * 4  # the codebooks
    else:
        raise ValueError(f"no memory estimate for index type {spec.index_type!r}")
    return fixed + per_vector * count
