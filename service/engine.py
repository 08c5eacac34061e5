"""The models behind the service: one loaded index (its encoder) and an optional BertSim,
called through micro-batchers on one model thread.

Torch already spreads one call over every core, so calls never overlap: a single model thread
runs them in turn, and batching is what lets concurrent requests share the work.
"""

from __future__ import annotations

from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from adrecall.model_loading import load_tokenizer
from adrecall.textnorm import check_texts
from retrieval.retriever import Hit, Retriever
from service.batching import BatchSettings, MicroBatcher
from service.errors import Rejected
from service.metrics import Metrics


class Engine:
    """Encode, search and rerank for the endpoints, batched; ``await close()`` at shutdown.

    ``batching`` defaults to :class:`BatchSettings`(). ``retriever.reranker`` (when set) reranks ``/search`` and answers ``/rerank``; it must
    have ``score(query, texts)``, and ``predict_pairs(queries, texts)`` lets requests share
    a call (BertSim has both).
    """

    def __init__(self, retriever: Retriever, *, default_mode: str = "dense",
                 batching: BatchSettings | None = None, max_queue: int = 1024,
                 metrics: Metrics | None = None, reranker_name: str | None = None) -> None:
        self.retriever = retriever
        self.encoder = retriever.encoder
        self.reranker = retriever.reranker
        self.reranker_name = reranker_name
        self.default_mode = self.check_mode(default_mode)
        self.batching = batching or BatchSettings()
        self.metrics = metrics or Metrics()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adrecall-model")
        self._batchers: list[MicroBatcher] = []
        self._tokenizer: Any = None  # for usage counts, loaded on the first /v1/embeddings
        self._encode = self._batcher("encode", self._run_encode, max_queue)
        self._search = self._batcher("search", self._run_search, max_queue)
        self._rerank = self._batcher("rerank", self._run_rerank, max_queue)

    @property
    def modes(self) -> list[str]:
        """The search modes this index supports (lexical and hybrid need ``build --lexical``)."""
        return ["dense", "lexical", "hybrid"] if self.retriever.lexical is not None else ["dense"]

    def check_mode(self, mode: str) -> str:
        """``mode`` when the index supports it, else a 422 saying what to do."""
        if mode not in self.modes:
            raise Rejected(422, f"mode {mode!r} needs the index's lexical side, and this index "
                           "has none; use mode 'dense' or rebuild it with `adrecall build "
                           "--lexical`", "mode")
        return mode

    async def encode(self, texts: list[str], *, normalize: bool = True) -> np.ndarray:
        """Float32 ``(len(texts), dimension)`` vectors, as ``Encoder.encode``."""
        check_texts(texts)
        return np.stack(await self._encode.submit(texts, key=normalize))

    async def search(self, queries: list[str], k: int, mode: str) -> list[list[Hit]]:
        """Each query's hits, as ``Retriever.search(queries, k, mode=mode)``."""
        check_texts(queries, what="query")
        return await self._search.submit(queries, key=(k, self.check_mode(mode)))

    async def rerank(self, query: str, texts: list[str]) -> np.ndarray:
        """The reranker's score of each text for ``query``, as ``BertSim.score``."""
        if self.reranker is None:
            raise Rejected(404, "this server has no reranker; start it with --reranker DIR "
                           "(a BertSim folder from `adrecall train-reranker`)")
        check_texts(query, what="query")
        check_texts(texts)
        return np.asarray(await self._rerank.submit([(query, t) for t in texts]),
                          dtype=np.float32)

    def tokens(self, texts: list[str]) -> int:
        """Tokens the encoder reads for ``texts`` (special tokens included, truncation
        applied): the usage an OpenAI-style response reports."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.encoder.model_dir)
        lengths = self._tokenizer(self.encoder.prepare(texts), truncation=True,
                            max_length=self.encoder.max_length)["input_ids"]
        return sum(len(ids) for ids in lengths)

    def describe(self) -> dict[str, Any]:
        """What ``/health`` reports about the models and settings."""
        return {"index": self.retriever.source, "ads": len(self.retriever),
                "model": self.encoder.label, "dimension": self.encoder.dimension,
                "reranker": self.reranker_name if self.reranker is not None else None,
                "modes": self.modes,
                "batching": {"enabled": self.batching.enabled,
                             "max_batch_size": self.batching.max_batch_size,
                             "max_wait_ms": self.batching.max_wait_ms}}

    async def close(self) -> None:
        """Finish the queued calls, then stop the model thread."""
        for batcher in self._batchers:
            await batcher.close()
        self._executor.shutdown(wait=True)

    def _batcher(self, name: str, run: Any, max_queue: int) -> MicroBatcher:
        batcher = MicroBatcher(name, run, self._executor, self.batching, self.metrics,
                               max_queue=max_queue)
        self._batchers.append(batcher)
        return batcher

    def _run_encode(self, normalize: Hashable, texts: list[str]) -> list[np.ndarray]:
        return list(self.encoder.encode(texts, normalize=bool(normalize)))

    def _run_search(self, key: Hashable, queries: list[str]) -> list[list[Hit]]:
        k, mode = key  # type: ignore[misc]
        return self.retriever.search(queries, k, mode=mode)

    def _run_rerank(self, key: Hashable, pairs: list[tuple[str, str]]) -> list[float]:
        queries, texts = [q for q, _ in pairs], [t for _, t in pairs]
        if hasattr(self.reranker, "predict_pairs"):  # BertSim: every pair in one call
            return [float(s) for s in self.reranker.predict_pairs(queries, texts)]
        return [float(self.reranker.score(q, [t])[0]) for q, t in pairs]
