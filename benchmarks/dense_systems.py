"""Our dense retrieval as benchmark systems: ``dense-flat``, ``dense-hnsw``, ``dense-ivf``, and
``dense-flat+rerank`` (dense candidates reordered by a BertSim cross-encoder).

Each system builds a real index directory of the data set's corpus with
``index_build.build_index`` and searches it through ``retrieval.Retriever``, exactly as users
do. Indexes live in the evaluation cache, never in the repository::

    $ADRECALL_CACHE/eval/indexes/<dataset>-<corpus sha256[:16]>-<weights sha256[:16]>/
        corpus.parquet   the texts indexed (ad_id = doc id, text = ``EvalDataset.doc_texts()``)
        flat/ hnsw/ ivf/ one index directory per type

so a rerun with the same corpus and model weights loads them instead of encoding again (a
cached index this adrecall cannot read, say from an older index format, is rebuilt). A
doc without any text cannot be embedded; it is left out of the index (so it is never found)
and counted in the system's model description.

``register_dense_systems(DenseOptions(model=..., reranker=..., candidates=...))`` (re)binds
the systems to the options of a run; the runner calls it from its command line
(``--model DIR``, ``--reranker DIR``, ``--rerank-candidates K``). Without a reranker the
rerank system raises ``SystemUnavailable`` and the runner skips it with that message.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from adrecall.models import DEFAULT_MODEL
from benchmarks.datasets import EvalDataset, cache_root
from benchmarks.eval_run import RunResults, System, SystemUnavailable, register_system
from index_build.build_job import build_index
from retrieval.encoder import Encoder
from retrieval.evaluation import search_run
from retrieval.faiss_index import INDEX_TYPES
from retrieval.index_store import IndexFormatError
from retrieval.retriever import Reranker, Retriever

CORPUS_FILE = "corpus.parquet"


@dataclass(frozen=True)
class DenseOptions:
    """Settings shared by the dense systems of one run.

    ``model``: bi-encoder directory (``None``: the embedded all-MiniLM-L6-v2). ``reranker``: a
    BertSim directory or any object with ``score(query, texts)``. ``candidates``: how many
    dense hits the reranker reorders (at least the run's depth, see ``build_dense_rerank``).
    """

    model: str | None = None
    reranker: str | Path | Reranker | None = None
    candidates: int = 100
    batch_size: int = 128


@lru_cache(maxsize=4)
def load_encoder(model: str | None) -> Encoder:
    """The bi-encoder, loaded once per run and shared by every dense system."""
    return Encoder(model)


def model_name(encoder: Encoder) -> str:
    """Short name of the bi-encoder for system names and tables."""
    if encoder.label == DEFAULT_MODEL:
        return "all-MiniLM-L6-v2"
    return Path(encoder.label).name


def indexable_corpus(dataset: EvalDataset) -> tuple[list[str], list[str], list[str]]:
    """``(doc_ids, texts, dropped_ids)``: docs with text, and the blank ones left out."""
    ids, texts, dropped = [], [], []
    for doc_id, text in zip(dataset.doc_ids(), dataset.doc_texts()):
        if text.strip():
            ids.append(doc_id)
            texts.append(text)
        else:
            dropped.append(doc_id)
    return ids, texts, dropped


def corpus_sha256(doc_ids: list[str], texts: list[str]) -> str:
    """Checksum of the indexed corpus (ids and texts, in order)."""
    digest = hashlib.sha256()
    for doc_id, text in zip(doc_ids, texts):
        digest.update(json.dumps([doc_id, text], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class CachedIndex:
    """An index directory of a data set's corpus, what went into it, and its retriever."""

    path: Path
    built_now: bool
    n_indexed: int
    dropped: list[str]
    retriever: Retriever


def cached_index(
    dataset: EvalDataset,
    index_type: str,
    encoder: Encoder,
    reranker: Reranker | None = None,
    candidates: int = 100,
) -> CachedIndex:
    """The ``index_type`` index of ``dataset``'s corpus under ``encoder``, built unless a
    readable one is cached, and loaded as a ``Retriever`` with ``reranker`` and ``candidates``."""
    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r}; choose one of {INDEX_TYPES}")
    ids, texts, dropped = indexable_corpus(dataset)
    if not ids:
        raise ValueError(f"{dataset.name}: no doc has text that can be embedded")
    key = f"{dataset.name}-{corpus_sha256(ids, texts)[:16]}-{encoder.weights_sha256[:16]}"
    key += "-wobert" if encoder.wobert else ""  # same weights, other tokenisation
    folder = cache_root() / "indexes" / key
    corpus_path = folder / CORPUS_FILE
    if not corpus_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{CORPUS_FILE}.tmp"
        pq.write_table(pa.table({"ad_id": ids, "text": texts}), partial)
        partial.replace(corpus_path)
    out = folder / index_type

    def load() -> Retriever:
        return Retriever.load(out, model=encoder, reranker=reranker, candidates=candidates)

    if (out / "manifest.json").is_file():
        try:
            return CachedIndex(out, False, len(ids), dropped, load())
        except IndexFormatError as exc:
            print(f"{dataset.name}: rebuilding the cached {index_type} index ({exc})",
                  file=sys.stderr)
    print(f"{dataset.name}: building the {index_type} index of {len(ids):,} docs in {out}",
          file=sys.stderr)
    build_index(corpus_path, out, model=encoder, index_type=index_type, resume=True,
                progress=sys.stderr.isatty())
    return CachedIndex(out, True, len(ids), dropped, load())


def _describe(encoder: Encoder, index: CachedIndex) -> str:
    manifest = index.retriever.manifest
    dropped = (f"; {len(index.dropped)} doc(s) without text left out "
               f"({', '.join(index.dropped[:5])})" if index.dropped else "")
    return (
        f"adrecall bi-encoder {model_name(encoder)} (weights {encoder.weights_sha256[:12]}, "
        f"{encoder.dimension}-d, max {encoder.max_length} tokens, text normalisation "
        f"{'on' if encoder.normalize_text else 'off'}); FAISS {manifest.factory}"
        + (f" {manifest.search_params}" if manifest.search_params else "")
        + f"; {index.n_indexed:,} docs indexed{dropped}"
    )


def build_dense(
    dataset: EvalDataset, depth: int, index_type: str, options: DenseOptions
) -> System:
    """Dense retrieval over a cached ``index_type`` index; ``build_s`` is the index's full
    build time (encoding included) as its manifest records it, even when loaded from cache."""
    encoder = load_encoder(options.model)
    index = cached_index(dataset, index_type, encoder)

    def search(queries: dict[str, str]) -> RunResults:
        return search_run(index.retriever, queries, depth, options.batch_size)

    name = f"dense-{index_type}" + ("" if options.model is None else f" [{model_name(encoder)}]")
    return System(name, _describe(encoder, index), search, index.retriever.manifest.build_seconds)


def build_dense_rerank(dataset: EvalDataset, depth: int, options: DenseOptions) -> System:
    """Exact dense retrieval, then the reranker reorders the top ``max(candidates, depth)``."""
    if options.reranker is None:
        raise SystemUnavailable(
            "it needs a trained BertSim model: pass --reranker DIR (a directory saved by "
            "`adrecall train-reranker`)"
        )
    started = time.perf_counter()
    reranker, reranker_name = _reranker(options.reranker)
    candidates = max(options.candidates, depth)
    if options.candidates < depth:
        print(f"note: reranking {candidates} candidates, the run's depth, not "
              f"{options.candidates}", file=sys.stderr)
    encoder = load_encoder(options.model)
    index = cached_index(dataset, "flat", encoder, reranker=reranker, candidates=candidates)

    def search(queries: dict[str, str]) -> RunResults:
        return search_run(index.retriever, queries, depth, options.batch_size)

    name = "dense-flat+rerank" + ("" if options.model is None else f" [{model_name(encoder)}]")
    model = f"{_describe(encoder, index)}; reranked by {reranker_name}, top {candidates}"
    build_s = index.retriever.manifest.build_seconds + time.perf_counter() - started
    return System(name, model, search, build_s)


def _reranker(spec: str | Path | Reranker) -> tuple[Reranker, str]:
    if hasattr(spec, "score"):
        return spec, type(spec).__name__  # type: ignore[return-value]
    from rerank import BertSim  # only this system needs torch's cross-encoder code

    return BertSim.load(spec), f"BertSim {Path(spec).resolve()}"


def register_dense_systems(options: DenseOptions | None = None) -> None:
    """Register (or rebind) the dense systems to ``options``."""
    chosen = options or DenseOptions()
    for index_type in INDEX_TYPES:
        register_system(f"dense-{index_type}", partial(build_dense, index_type=index_type,
                                                       options=chosen))
    register_system("dense-flat+rerank", partial(build_dense_rerank, options=chosen))


register_dense_systems()
