"""IVF lists found apart from the index (as cluster workers find them) give the index that
adding the vectors directly gives, byte for byte, for IVF-Flat and IVF-PQ, whitened or not."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from index_build.coarse_lists import CoarseAssigner, add_with_lists, assigner_bytes
from retrieval.faiss_index import IndexSpec, create_index, train_index
from retrieval.whitening import fit_whitening


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("factory", ["IDMap2,IVF32,Flat", "IDMap2,IVF32,PQ8x8"])
@pytest.mark.parametrize("whiten", [False, True])
def test_lists_found_apart_give_the_same_index_byte_for_byte(factory: str, whiten: bool) -> None:
    raw = _unit(3000, 32, seed=1)
    whitening = fit_whitening(raw[::3]) if whiten else None
    vectors = whitening.apply(raw) if whitening is not None else raw
    ids = np.arange(10, 3010, dtype=np.int64)
    direct = create_index(IndexSpec("ivf", factory, {"nprobe": 4}), 32)
    train_index(direct, vectors[::2])
    apart = faiss.clone_index(direct)
    batches = [(vectors[i:i + 700], ids[i:i + 700]) for i in range(0, 3000, 700)]
    for batch, batch_ids in batches:
        direct.add_with_ids(batch, batch_ids)

    assigner = CoarseAssigner.from_bytes(assigner_bytes(apart, whitening))  # as a worker reads it
    lists = [assigner.lists(raw[i:i + 700]) for i in range(0, 3000, 700)]
    add_with_lists(apart, batches, lists)

    np.testing.assert_array_equal(faiss.serialize_index(apart), faiss.serialize_index(direct))
    assert apart.search(vectors[:5], 3)[1][:, 0].tolist() == ids[:5].tolist()


def test_lists_must_match_their_batches_and_the_index_must_be_empty() -> None:
    vectors = _unit(200, 16, seed=2)
    index = create_index(IndexSpec("ivf", "IDMap2,IVF4,Flat", {"nprobe": 4}), 16)
    train_index(index, vectors)
    with pytest.raises(ValueError, match="10 vectors came with"):
        add_with_lists(index, [(vectors[:10], np.arange(10))], [np.zeros(9, np.int64)])
    index.add_with_ids(vectors[:5], np.arange(5))
    with pytest.raises(ValueError, match="fills an empty index; this one holds 5"):
        add_with_lists(index, [], [])
