"""Search an index directory from Python: queries in, ranked ads out, optionally reranked.

First stage by ``mode``: ``dense`` (FAISS), ``lexical`` (the index's BM25, built with
``--lexical``) or ``hybrid`` (both lists fused, :mod:`retrieval.hybrid`); a reranker, when given,
reorders the first stage's top ``candidates``.

The retrieve → rerank pipeline takes the reranker as an object (anything with
``score(query, texts) -> np.ndarray``), so ``retrieval`` never imports ``rerank``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, overload

import faiss
import numpy as np
import pyarrow as pa

from adrecall.models import DEFAULT_MODEL
from adrecall.score_fusion import FUSIONS, check_weight, fuse
from adrecall.textnorm import check_texts
from retrieval.encoder import Encoder
from retrieval.faiss_index import apply_search_params, search_parameters
from retrieval.hybrid import Candidate, check_hybrid, fuse_lists, single_list
from retrieval.index_check import check_stored_vectors
from retrieval.index_store import IndexFormatError, Manifest, read_index_dir
from retrieval.lexical_index import LexicalIndex
from retrieval.whitening import Whitening


class Reranker(Protocol):
    """What the pipeline needs from a second-stage model such as BertSim."""

    def score(self, query: str, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    """One retrieved ad. ``score`` is what ranked it: the first stage's (dense, lexical or
    their hybrid fusion), the reranker's, or their weighted fusion (``Retriever.load``'s
    ``fusion``). ``sources`` names the first-stage lists that found it and its rank in each."""

    rank: int
    ad_id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    dense_score: float | None = None
    rerank_score: float | None = None
    lexical_score: float | None = None
    sources: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "ad_id": self.ad_id,
            "score": self.score,
            "dense_score": self.dense_score,
            "lexical_score": self.lexical_score,
            "rerank_score": self.rerank_score,
            "sources": self.sources,
            "text": self.text,
            "metadata": self.metadata,
        }


class Retriever:
    """A loaded index with the encoder it was built with (and its lexical index, when it has
    one); safe to share between threads."""

    def __init__(
        self,
        index: faiss.Index,
        ads: pa.Table,
        manifest: Manifest,
        encoder: Encoder,
        *,
        reranker: Reranker | None = None,
        candidates: int = 100,
        whitening: Whitening | None = None,
        fusion: str = "rerank",
        fusion_weight: float | None = None,
        source: str | Path | None = None,
        lexical: LexicalIndex | None = None,
        hybrid_fusion: str = "rrf",
        lexical_weight: float = 0.5,
        tombstones: np.ndarray | None = None,
    ) -> None:
        check_encoder_matches(manifest, encoder)
        self.lexical_weight = check_hybrid("dense", hybrid_fusion, lexical_weight)
        self.hybrid_fusion = hybrid_fusion
        if lexical is not None and len(lexical) != len(ads):
            raise IndexFormatError(f"the lexical index holds {len(lexical)} documents but the "
                                   f"index {len(ads)} ads; rebuild with --lexical")
        self.lexical = lexical
        if bool(manifest.whitening) != (whitening is not None):
            raise IndexFormatError(
                "the index was built with whitening; pass its transform (Retriever.load does)"
                if manifest.whitening
                else "the index was built without whitening but a whitening transform was given"
            )
        if isinstance(reranker, type):
            raise TypeError(
                f"reranker is the class {reranker.__name__}; pass an instance, such as "
                f"{reranker.__name__}.load(path)"
            )
        if reranker is not None and not callable(getattr(reranker, "score", None)):
            raise TypeError(
                f"reranker {type(reranker).__name__} has no callable score(query, texts); pass "
                "an object such as rerank.BertSim.load(path), or None for dense ranking only"
            )
        self.index = index
        self.ads = ads
        self.manifest = manifest
        self.encoder = encoder
        self.reranker = reranker
        self.candidates = check_count("candidates", candidates)
        self.whitening = whitening
        self.fusion, self.fusion_weight = fusion_settings(fusion, fusion_weight, reranker)
        self.source = None if source is None else str(Path(source).resolve())
        ids = ads.column("faiss_id").to_numpy()
        self._order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._order]
        self.tombstones = (np.zeros(0, dtype=np.int64) if tombstones is None
                           else np.asarray(tombstones, dtype=np.int64))
        """Ids of removed ads still in an HNSW index: never returned."""

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        model: str | Path | Encoder | None = None,
        reranker: Reranker | None = None,
        candidates: int = 100,
        search_params: dict[str, int] | None = None,
        verify: bool = True,
        fusion: str = "rerank",
        fusion_weight: float | None = None,
        hybrid_fusion: str = "rrf",
        lexical_weight: float = 0.5,
        backend: str = "auto",
        threads: int | None = None,
        mmap: bool = False,
    ) -> Retriever:
        """Open an index directory; the model defaults to the one recorded in its manifest.

        ``search_params`` overrides the stored ones (``nprobe`` for IVF, ``efSearch`` for
        HNSW). ``verify`` checks every file against its checksum first. With a reranker,
        ``fusion="rerank"`` orders the candidates by its score and ``"weighted"`` by
        :func:`adrecall.score_fusion.fuse` of dense and rerank scores, with ``fusion_weight`` or
        the weight the reranker stores (``BertSim.fusion_weight``, chosen on dev).
        ``hybrid_fusion`` (``rrf`` or ``weighted``) and ``lexical_weight`` set how ``hybrid``
        search fuses the dense and lexical lists (:mod:`retrieval.hybrid`). ``backend`` and
        ``threads`` choose what runs the encoder (:mod:`adrecall.backends`); any back-end whose
        vectors agree with the index's (the load check) may search it. ``mmap`` maps the FAISS
        file rather than reading it (:func:`retrieval.index_store.read_index_dir`).
        """
        parts = read_index_dir(path, verify=verify, mmap=mmap)
        if search_params:
            apply_search_params(parts.index, search_params)
        manifest = parts.manifest
        if isinstance(model, Encoder):
            encoder = model
        else:
            encoder = Encoder(_model_for(manifest, model, path),
                              normalize_text=manifest.normalize_text, backend=backend,
                              threads=threads)
        retriever = cls(
            parts.index,
            parts.ads,
            manifest,
            encoder,
            reranker=reranker,
            candidates=candidates,
            whitening=parts.whitening,
            fusion=fusion,
            fusion_weight=fusion_weight,
            source=path,
            lexical=parts.lexical,
            hybrid_fusion=hybrid_fusion,
            lexical_weight=lexical_weight,
            tombstones=parts.tombstones,
        )
        check_stored_vectors(parts, encoder, path)  # after the constructor's identity checks
        return retriever

    def __len__(self) -> int:
        return int(self.ads.num_rows)

    @overload
    def search(self, queries: str, k: int = 10, *, mode: str = "dense",
               batch_size: int = 128, search_params: dict[str, int] | None = None) -> list[Hit]: ...

    @overload
    def search(self, queries: list[str], k: int = 10, *, mode: str = "dense",
               batch_size: int = 128,
               search_params: dict[str, int] | None = None) -> list[list[Hit]]: ...

    def search(
        self, queries: str | list[str], k: int = 10, *, mode: str = "dense", batch_size: int = 128,
        search_params: dict[str, int] | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """Top-``k`` ads per query: a list of hits for one string, a list of lists otherwise.

        ``mode``: ``dense``, ``lexical`` or ``hybrid`` (each list ``max(k, candidates)`` deep,
        fused). With a reranker, the first stage's top ``candidates`` are reranked; when ``k``
        is larger, the hits after them follow in first-stage order, with first-stage scores.
        ``search_params`` (``nprobe``, ``efSearch``) override the index's for this call only.
        """
        k = check_count("k", k)
        check_hybrid(mode, self.hybrid_fusion, self.lexical_weight)
        if mode != "dense" and self.lexical is None:
            raise IndexFormatError(
                f"{self.source or 'this index'} has no lexical index, so it cannot be searched in "
                f"{mode} mode; rebuild it with `adrecall build --lexical` or use mode 'dense'"
            )
        single = isinstance(queries, str)
        texts = check_texts(queries, what="query")
        if not texts:
            return []
        deep = self.reranker is not None or mode == "hybrid"
        depth = max(k, self.candidates) if deep else k
        dense, lexical = self.first_stage_lists(texts, depth, mode=mode, batch_size=batch_size,
                                                search_params=search_params)
        results = []
        for i, query in enumerate(texts):
            if dense is not None and lexical is not None:
                candidates = fuse_lists(dense[i], lexical[i], self.hybrid_fusion,
                                        self.lexical_weight,
                                        self.encoder.unreadable_share(query))[:depth]
            else:
                candidates = (single_list(dense[i], "dense") if dense is not None
                              else single_list(lexical[i], "lexical"))  # type: ignore[index]
            results.append(self._hits(query, candidates, k))
        return results[0] if single else results

    def first_stage_lists(
        self, texts: list[str], depth: int, *, mode: str = "hybrid", batch_size: int = 128,
        search_params: dict[str, int] | None = None,
    ) -> tuple[list[list[tuple[int, float]]] | None, list[list[tuple[int, float]]] | None]:
        """Each query's dense and lexical hits (``None`` for a side ``mode`` leaves out), as
        ``(ads row, score)`` lists, best first, ``depth`` deep."""
        dense = (self._dense_lists(texts, depth, batch_size, search_params)
                 if mode != "lexical" else None)
        lexical = (self.lexical.search(texts, depth)
                   if self.lexical is not None and mode != "dense" else None)
        return dense, lexical

    def _dense_lists(self, texts: list[str], depth: int, batch_size: int,
                     search_params: dict[str, int] | None) -> list[list[tuple[int, float]]]:
        """Each query's FAISS hits as ``(ads row, score)``, best first."""
        scores, ids = self.search_vectors(self.encoder.encode(texts, batch_size=batch_size), depth,
                                          search_params)
        lists = []
        for row_scores, row_ids in zip(scores, ids):
            found = row_ids >= 0
            rows = self._order[np.searchsorted(self._sorted_ids, row_ids[found])]
            lists.append([(int(r), float(s)) for r, s in zip(rows, row_scores[found])])
        return lists

    def score_pairs(self, queries: list[str], texts: list[str], *, batch_size: int = 128) -> np.ndarray:
        """First-stage scores of arbitrary (query, text) pairs: the inner product the index
        would give the text as an ad (whitened when the index is), e.g. for judged pairs."""
        queries, texts = check_texts(queries, "query"), check_texts(texts)  # no dict, no chars
        if len(queries) != len(texts):
            raise ValueError(f"{len(queries)} queries but {len(texts)} texts; give one per pair")
        if not queries:
            return np.zeros(0, dtype=np.float32)
        q, t = (self.encoder.encode(list(x), batch_size=batch_size) for x in (queries, texts))
        if self.whitening is not None:
            q, t = self.whitening.apply(q), self.whitening.apply(t)
        return np.einsum("ij,ij->i", q, t).astype(np.float32)

    def describe(self) -> dict[str, object]:
        """What identifies this first stage, for a reranker's manifest."""
        m = self.manifest
        return {"index": self.source, "model": m.model, "model_sha256": m.model_sha256,
                "index_type": m.index_type, "count": m.count, "built_at": m.built_at}

    def search_vectors(self, vectors: np.ndarray, k: int,
                       search_params: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search on query vectors from the encoder: ``(scores, faiss_ids)``.

        ``vectors`` are the encoder's raw output; a whitened index whitens them here, so no
        query can reach it unwhitened. Removed ads (tombstones) are never returned;
        ``search_params`` override ``nprobe``/``efSearch`` for this call.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        expected = self.manifest.model_dimension
        if vectors.ndim != 2 or vectors.shape[1] != expected:
            raise ValueError(
                f"query vectors have shape {vectors.shape}; expected (n, {expected}), "
                "the encoder's output"
            )
        if self.whitening is not None:
            vectors = self.whitening.apply(vectors)
        params = search_parameters(self.index, search_params, self.tombstones)
        return self.index.search(vectors, min(k, max(len(self), 1)), params=params)

    def _hits(self, query: str, candidates: list[Candidate], k: int) -> list[Hit]:
        rows = [c.row for c in candidates]
        scores = np.array([c.score for c in candidates], dtype=np.float64)
        table = self.ads.take(pa.array(rows, type=pa.int64())).to_pydict()
        rerank_scores: list[float | None] = [None] * len(rows)
        final_scores = [float(s) for s in scores]
        order = np.arange(len(rows))
        head = min(len(rows), self.candidates)  # reranked; the rest keeps first-stage order
        if self.reranker is not None and head:
            reranked = np.asarray(self.reranker.score(query, table["text"][:head]),
                                  dtype=np.float64)
            if reranked.shape != (head,):
                raise ValueError(f"the reranker returned shape {reranked.shape} for {head} texts")
            if not np.isfinite(reranked).all():
                bad = reranked[~np.isfinite(reranked)][0]
                raise ValueError(
                    f"reranker {type(self.reranker).__name__} scored {bad} for an ad of query "
                    f"{query!r}; scores must be finite numbers (check the reranker's model)"
                )
            if self.fusion == "weighted":
                ranking = fuse(scores[:head], reranked, float(self.fusion_weight or 0.0))
            else:
                ranking = reranked
            # ties broken by the first-stage score
            order = np.concatenate([np.lexsort((-scores[:head], -ranking)),
                                    np.arange(head, len(rows))])
            final_scores[:head] = [float(s) for s in ranking]
            rerank_scores[:head] = [float(s) for s in reranked]
        hits = []
        for rank, j in enumerate(order[:k], start=1):
            candidate = candidates[j]
            hits.append(
                Hit(
                    rank=rank,
                    ad_id=table["ad_id"][j],
                    score=final_scores[j],
                    text=table["text"][j],
                    metadata=json.loads(table["metadata"][j]) if table["metadata"][j] else {},
                    dense_score=candidate.dense_score,
                    rerank_score=rerank_scores[j],
                    lexical_score=candidate.lexical_score,
                    sources=candidate.sources,
                )
            )
        return hits


def fusion_settings(
    fusion: str, weight: float | None, reranker: Reranker | None
) -> tuple[str, float | None]:
    """The checked fusion mode and the weight it uses (``None`` for rerank order alone); the
    command line calls it before the index loads, so a bad choice fails fast."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    if fusion == "rerank":
        if weight is not None:
            raise ValueError("fusion_weight is set but fusion is 'rerank'; pass fusion='weighted'")
        return fusion, None
    if reranker is None:
        raise ValueError("fusion='weighted' fuses dense and rerank scores: give a reranker")
    if weight is None:
        weight = getattr(reranker, "fusion_weight", None)
    if weight is None:
        raise ValueError(
            f"fusion='weighted' needs a weight, and reranker {type(reranker).__name__} stores "
            "none: train it with --index and --dev (the weight is chosen on dev), or pass "
            "fusion_weight / --fusion-weight"
        )
    return fusion, check_weight(weight)


def check_count(name: str, value: object) -> int:
    """``value`` as a count of at least 1; a bool or non-integer is a ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def check_encoder_matches(manifest: Manifest, encoder: Encoder) -> None:
    """Refuse an encoder whose weights, dimension or tokenisation differ from the index's."""
    if encoder.dimension != manifest.model_dimension:
        raise IndexFormatError(
            f"the index holds {manifest.model_dimension}-dimensional vectors but model "
            f"{encoder.label} makes {encoder.dimension}-dimensional ones; use the index's model "
            f"({manifest.model})"
        )
    if encoder.weights_sha256 != manifest.model_sha256:
        raise IndexFormatError(
            f"the index was built with model {manifest.model} (weights {manifest.model_sha256[:12]}) "
            f"but model {encoder.label} has weights {encoder.weights_sha256[:12]}; search it with "
            "the same model or rebuild the index"
        )
    if encoder.wobert != manifest.wobert:
        raise IndexFormatError(
            f"the index was built with WoBERT pre-tokenisation {'on' if manifest.wobert else 'off'} "
            f"but model {encoder.label} now tokenises with it {'on' if encoder.wobert else 'off'} "
            "(the adrecall_wobert flag in its tokenizer_config.json); rebuild the index or set "
            "the flag back as it was"
        )


def _model_for(manifest: Manifest, model: str | Path | None, path: str | Path) -> str | Path:
    if model is not None:
        return model
    if manifest.model == DEFAULT_MODEL or Path(manifest.model).is_dir():
        return manifest.model
    raise IndexFormatError(
        f"{path} was built with model {manifest.model}, which is not on this machine; "
        "pass the model directory explicitly (model=... / --model)"
    )
