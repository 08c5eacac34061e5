"""Check at load that the vectors in an index are the ones its manifest says how to make.

The manifest records how ads were embedded: the model, whether text was normalised, and the
whitening. Queries are encoded the same way, so an edited manifest (or a swapped whitening
file with its checksum updated) would change every result silently. Re-encoding a few stored
ads with the query-side encoder and comparing with their vectors in the index catches it.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from adrecall.textnorm import model_text
from retrieval.encoder import Encoder
from retrieval.index_store import IndexFormatError, IndexParts

SAMPLE_SIZE = 4
"""Ads re-encoded at load."""
SCANNED_ROWS = 1000
"""Rows searched for ads whose text normalisation changes."""
MIN_COSINE = 0.999
"""fp32 re-encoding of the same text agrees to about 1e-6; a change of normalisation, model
or whitening moves a vector far more (the sample catalogue's ads: cosine 0.77–0.98 between
their normalised and raw texts)."""


def check_stored_vectors(parts: IndexParts, encoder: Encoder, where: str | Path) -> None:
    """Refuse an index whose stored vectors differ from what ``encoder`` (and the index's
    whitening) makes of the same ads: cosine below :data:`MIN_COSINE` for any sampled ad.

    The ads are taken among the first :data:`SCANNED_ROWS` rows, those that text normalisation
    changes first, so that an edited ``normalize_text`` shows. When none of them changes under
    normalisation, the flag makes no difference to them and only model and whitening are
    checked.
    """
    head = parts.ads.slice(0, SCANNED_ROWS)
    texts = head.column("text").to_pylist()
    changed_first = sorted(
        range(len(texts)), key=lambda row: model_text(texts[row]) == model_text(texts[row], False)
    )
    rows = changed_first[:SAMPLE_SIZE]
    ids = head.column("faiss_id").to_numpy()[rows]
    stored = _reconstruct(parts.index, ids)
    fresh = encoder.encode_batch([texts[row] for row in rows]).vectors
    if parts.whitening is not None:
        fresh = parts.whitening.apply(fresh)
    fresh = _through_codec(parts.index, fresh)
    cosines = np.sum(stored * fresh, axis=1) / np.maximum(
        np.linalg.norm(stored, axis=1) * np.linalg.norm(fresh, axis=1), 1e-12
    )
    worst = int(np.argmin(cosines))
    if cosines[worst] < MIN_COSINE:
        ad_id = head.column("ad_id")[rows[worst]].as_py()
        raise IndexFormatError(
            f"{where}: ad {ad_id!r} re-encoded with model {encoder.label} "
            f"(normalize_text={encoder.normalize_text}"
            f"{', whitened' if parts.whitening is not None else ''}) has cosine "
            f"{cosines[worst]:.4f} to its vector in the index: the manifest's model, "
            "normalize_text or whitening is not what the index was built with; restore it or "
            "rebuild the index"
        )


def _through_codec(index: faiss.Index, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as a lossy index (SQ8, IVF-PQ) stores them: encoded and decoded by its own
    codec, so they compare with the stored ones as exactly as full vectors do."""
    inner = faiss.downcast_index(index.index if isinstance(index, faiss.IndexIDMap) else index)
    if isinstance(inner, (faiss.IndexScalarQuantizer, faiss.IndexIVFPQ)):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return inner.sa_decode(inner.sa_encode(vectors))
    return vectors


def _reconstruct(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """The stored vectors of ``ids``; an IVF index gets a direct map for the time it takes."""
    ivf = faiss.try_extract_index_ivf(index)
    mapped = ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap
    if mapped:
        ivf.make_direct_map()
    try:
        return np.vstack([index.reconstruct(int(i)) for i in ids])
    finally:
        if mapped:
            ivf.make_direct_map(False)
