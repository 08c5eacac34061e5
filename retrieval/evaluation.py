"""Offline evaluation of an index on a user's own judged queries (``adrecall eval``).

Inputs are the files of the BEIR layout (Thakur et al. 2021), with the sample catalogue's
column names also accepted:

* **queries**: JSON lines ``{"_id", "text"}`` (or ``{"query_id", "text"}``); other keys are kept
  as extras and otherwise ignored;
* **qrels**: a TSV with the header ``query-id<TAB>corpus-id<TAB>score`` (BEIR) or
  ``query_id<TAB>ad_id<TAB>score``; one judgement per line, the score an integer gain
  (``>= 1`` is relevant, higher is more relevant).

The corpus ids of the qrels must be the ``ad_id`` values the index was built with.
:func:`evaluate_retriever` checks that before searching: qrels that name a query the queries
file lacks, or whose relevant docs are none of them in the index, raise ``ValueError``; a few
judged docs missing from the index are reported in ``EvalResult.settings`` (they count as
not found). Metrics and their conventions are those of :mod:`retrieval.metrics`.

These readers are the generic ones; ``benchmarks.datasets`` builds its data sets on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from adrecall.score_fusion import WEIGHT_GRID
from adrecall.tables import TableError, iter_table_chunks, require_columns, table_columns
from retrieval import metrics
from retrieval.hybrid import fuse_lists
from retrieval.metrics import DEFAULT_KS, MAP_CUTOFF, EvalResult, evaluate
from retrieval.retriever import Retriever

QRELS_HEADER = ("query-id", "corpus-id", "score")
"""The BEIR qrels header, written by ``benchmarks.datasets.write_qrels``."""
QRELS_HEADERS = (QRELS_HEADER, ("query_id", "ad_id", "score"))
"""Headers :func:`read_qrels` accepts: BEIR's and the sample catalogue's."""
QUERY_ID_KEYS = ("_id", "query_id")

Qrels = dict[str, dict[str, int]]
RunResults = dict[str, list[tuple[str, float]]]


# ---------------------------------------------------------------- readers


@dataclass
class JsonlTexts:
    """Texts of a JSON-lines file keyed by string id, in file order, with titles and extras."""

    texts: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    extras: dict[str, dict[str, object]] = field(default_factory=dict)


def read_jsonl_texts(
    path: str | Path, id_keys: Sequence[str] = ("_id",), keep_title: bool = False
) -> JsonlTexts:
    """Read ``{id, "text"}`` JSON lines (BEIR ``corpus.jsonl``/``queries.jsonl``).

    The id sits under the first key of ``id_keys`` that the file's first line has; ids may be
    strings or integers and are returned as strings. With ``keep_title`` a ``"title"`` goes
    to ``titles``, otherwise into the extras with every other key. Raises ``TableError``
    naming the file and row for a missing id or text, or an id that appears twice.
    """
    path = Path(path)
    columns = table_columns(path)
    id_key = next((k for k in id_keys if k in columns), None)
    if id_key is None:
        raise TableError(
            f"{path}: missing id key: each line needs one of {list(id_keys)} and 'text'; "
            f"the first line has {columns}"
        )
    require_columns(path, [id_key, "text"])
    out = JsonlTexts()
    for chunk in iter_table_chunks(path, chunk_rows=50_000):
        if id_key not in chunk or "text" not in chunk:
            raise TableError(f"{path}: every line needs the keys {id_key!r} and 'text'")
        other = [c for c in chunk.columns if c not in (id_key, "text", "title")]
        for row_no, row in zip(chunk.index, chunk.to_dict("records")):
            key, text = row[id_key], row["text"]
            if isinstance(key, bool) or not isinstance(key, (str, int)) or not isinstance(text, str):
                raise TableError(
                    f"{path}: row {row_no + 1} lacks a string or integer {id_key!r} or a "
                    "string 'text'"
                )
            key = str(key)
            if key in out.texts:
                raise TableError(f"{path}: id {key!r} appears twice (row {row_no + 1})")
            out.texts[key] = text
            title = row.get("title")
            if keep_title and isinstance(title, str) and title:
                out.titles[key] = title
            kept = {c: row[c] for c in other if _present(row[c])}
            if "title" in row and not keep_title and _present(row["title"]):
                kept["title"] = row["title"]
            if kept:
                out.extras[key] = kept
    return out


def _present(value: object) -> bool:
    return not (isinstance(value, float) and math.isnan(value))  # NaN: a key the row lacks


def read_queries(path: str | Path) -> dict[str, str]:
    """``{query_id: text}`` from a queries JSON-lines file (id key ``_id`` or ``query_id``)."""
    return read_jsonl_texts(path, id_keys=QUERY_ID_KEYS).texts


def read_qrels(path: str | Path) -> Qrels:
    """``{query_id: {doc_id: gain}}`` from a qrels TSV (see the module docstring for headers).

    Raises ``TableError`` naming the line for a score that is not an integer, or for a pair
    judged twice with different scores (repeating the same judgement is allowed).
    """
    columns = table_columns(path)
    header = next((h for h in QRELS_HEADERS if all(c in columns for c in h)), None)
    if header is None:
        accepted = " or ".join("<TAB>".join(h) for h in QRELS_HEADERS)
        raise TableError(
            f"{path}: missing column(s): a qrels file needs the header {accepted}; "
            f"the file has {columns}"
        )
    query_col, doc_col, score_col = header
    qrels: Qrels = {}
    for chunk in iter_table_chunks(path, chunk_rows=100_000, columns=list(header)):
        for row_no, qid, doc_id, score in zip(
            chunk.index, chunk[query_col], chunk[doc_col], chunk[score_col]
        ):
            try:
                gain = int(score)
            except (TypeError, ValueError) as exc:
                raise TableError(
                    f"{path}: line {row_no + 2} has score {score!r}; scores must be integers"
                ) from exc
            qid, doc_id = str(qid), str(doc_id)
            judged = qrels.setdefault(qid, {})
            if doc_id in judged and judged[doc_id] != gain:
                raise TableError(
                    f"{path}: line {row_no + 2} judges ({qid!r}, {doc_id!r}) again with a "
                    f"different score ({judged[doc_id]} then {gain})"
                )
            judged[doc_id] = gain
    return qrels


# ---------------------------------------------------------------- checks and runs


@dataclass(frozen=True)
class IdCheck:
    """How the qrels' doc ids match the index: judged and relevant ids it lacks."""

    n_judged_docs: int
    missing_judged: list[str]
    missing_relevant: list[str]


def check_ids(
    queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], ad_ids: Iterable[str],
    relevance_threshold: int = 1,
) -> IdCheck:
    """Check that the qrels fit the queries and the index before anything is searched.

    Raises ``ValueError`` when the qrels name query ids the queries lack, or when none of
    their relevant doc ids is an ad id of the index (the ids come from different columns).
    """
    unknown = [q for q in qrels if q not in queries]
    if unknown:
        raise ValueError(
            f"the qrels name {len(unknown)} query id(s) that the queries file lacks: "
            f"{unknown[:5]}; the queries file has ids such as {list(queries)[:5]}"
        )
    index_ids = set(ad_ids)
    judged = sorted({d for j in qrels.values() for d in j})
    relevant = sorted({d for j in qrels.values() for d, g in j.items() if g >= relevance_threshold})
    missing_relevant = [d for d in relevant if d not in index_ids]
    if relevant and len(missing_relevant) == len(relevant):
        raise ValueError(
            f"none of the {len(relevant)} relevant doc ids of the qrels (e.g. {relevant[:3]}) "
            f"is an ad id of the index (e.g. {sorted(index_ids)[:3]}); the qrels' corpus ids "
            "must be the ad ids the index was built with (`adrecall build --id-column`)"
        )
    return IdCheck(
        n_judged_docs=len(judged),
        missing_judged=[d for d in judged if d not in index_ids],
        missing_relevant=missing_relevant,
    )


def search_run(
    retriever: Retriever, queries: Mapping[str, str], depth: int, batch_size: int = 128,
    mode: str = "dense",
) -> RunResults:
    """Search every query to ``depth`` hits: ``{query_id: [(ad_id, score), ...]}``, best first.

    ``score`` is the hit's place, ``depth − rank + 1``, so the metrics rank exactly as the
    retriever did, also when a reranked head and a first-stage tail score on different scales
    (``candidates`` < ``depth``); ``mode`` as in :meth:`Retriever.search`.
    """
    qids = list(queries)
    if not qids:
        return {}
    results = retriever.search([queries[q] for q in qids], k=depth, mode=mode,
                               batch_size=batch_size)
    return {q: [(h.ad_id, float(depth - h.rank + 1)) for h in hits]
            for q, hits in zip(qids, results)}


def evaluation_depth(ks: Iterable[int]) -> int:
    """Hits to fetch per query: the largest recall cut-off, and at least MAP's 100."""
    return max([MAP_CUTOFF, *ks])


def evaluate_retriever(
    retriever: Retriever,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 128,
    depth: int | None = None,
    mode: str = "dense",
) -> EvalResult:
    """Check the ids (:func:`check_ids`), search ``depth`` hits for every query (default
    :func:`evaluation_depth`; at least the largest cut-off), and score the run.

    The primary metric is recall at the largest cut-off. ``settings`` records the depth
    searched, the index's model and type, the reranker, and the judged doc ids the index
    lacks (``missing_relevant_doc_ids``, ``n_missing_judged_docs``).
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"recall cut-offs must be positive integers, got {ks}")
    if not queries:
        raise ValueError("there are no queries to evaluate")
    ids = check_ids(queries, qrels, retriever.ads.column("ad_id").to_pylist())
    if depth is None:
        depth = evaluation_depth(ks)
    elif isinstance(depth, bool) or not isinstance(depth, int) or depth < ks[-1]:
        raise ValueError(f"the search depth k={depth!r} must be an integer at least the largest "
                         f"cut-off {ks[-1]}; raise k or lower the cut-offs")
    run = search_run(retriever, queries, depth, batch_size, mode=mode)
    result = evaluate(cast(metrics.Run, run), cast(metrics.Qrels, qrels), ks=ks,
                      primary_metric=f"recall@{ks[-1]}")
    reranker = retriever.reranker
    result.settings.update(
        {
            "depth": depth,
            "mode": mode,
            "hybrid_fusion": retriever.hybrid_fusion if mode == "hybrid" else None,
            "lexical_weight": retriever.lexical_weight if mode == "hybrid" else None,
            "model": retriever.manifest.model,
            "index_type": retriever.manifest.index_type,
            "index_ads": len(retriever),
            "reranker": None if reranker is None else type(reranker).__name__,
            "candidates": retriever.candidates if reranker is not None else None,
            "fusion": retriever.fusion if reranker is not None else None,
            "fusion_weight": retriever.fusion_weight,
            "n_judged_docs": ids.n_judged_docs,
            "n_missing_judged_docs": len(ids.missing_judged),
            "missing_relevant_doc_ids": ids.missing_relevant,
        }
    )
    return result


def choose_lexical_weight(
    retriever: Retriever,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    metric: str = "ndcg@10",
    grid: Sequence[float] = WEIGHT_GRID,
    depth: int = MAP_CUTOFF,
    batch_size: int = 128,
) -> tuple[float, dict[float, float]]:
    """The lexical weight of hybrid search (:mod:`retrieval.hybrid`, with the retriever's
    fusion rule) that scores best on these judged queries, and ``metric`` at every weight of
    ``grid``. Use dev queries, never the test set. Ties go to the weight nearer 0.5."""
    check_ids(queries, qrels, retriever.ads.column("ad_id").to_pylist())
    qids = list(queries)
    dense, lexical = retriever.first_stage_lists([queries[q] for q in qids], depth,
                                                 mode="hybrid", batch_size=batch_size)
    if dense is None or lexical is None:
        raise ValueError("choosing a lexical weight needs an index built with --lexical")
    ad_ids = retriever.ads.column("ad_id").to_pylist()
    unreadable = [retriever.encoder.unreadable_share(queries[q]) for q in qids]
    values: dict[float, float] = {}
    for weight in grid:
        run = {q: [(ad_ids[c.row], c.score)
                   for c in fuse_lists(d, lex, retriever.hybrid_fusion, weight, u)[:depth]]
               for q, d, lex, u in zip(qids, dense, lexical, unreadable)}
        result = evaluate(cast(metrics.Run, run), cast(metrics.Qrels, qrels), ks=[10, depth])
        if metric not in result.metrics:
            raise ValueError(f"unknown metric {metric!r}; choose from {sorted(result.metrics)}")
        values[float(weight)] = float(result.metrics[metric])
    best = max(values, key=lambda w: (values[w], -abs(w - 0.5)))
    return best, values
