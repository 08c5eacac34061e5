"""Query side of adrecall: the bi-encoder, the index format, search and the rerank pipeline."""

import adrecall  # noqa: F401  (first: idle OpenMP threads sleep; adrecall.idle_threads)
from retrieval.encoder import Encoder, EncodeResult
from retrieval.index_store import IndexFormatError, Manifest
from retrieval.retriever import Hit, Reranker, Retriever

__all__ = ["EncodeResult", "Encoder", "Hit", "IndexFormatError", "Manifest", "Reranker", "Retriever"]
