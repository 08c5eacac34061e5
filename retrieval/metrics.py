"""Ranking metrics for offline retrieval benchmarks: recall@k, MRR@10, nDCG@k, MAP@100.

Pure Python and numpy, no model code, so every benchmark and the ``adrecall eval`` command
score runs the same way. Conventions follow trec_eval, so the numbers can be checked against
it (``pytrec_eval``) and compared with published tables:

* **Run**: ``{query_id: results}`` where ``results`` is a list of ``(doc_id, score)`` pairs, a
  ``{doc_id: score}`` dict, or a list of doc ids already in rank order (rank 1 first).
* **Qrels**: ``{query_id: {doc_id: gain}}`` with integer gains; ``gain >= relevance_threshold``
  (default 1) means relevant. Ids are compared as strings (``1`` and ``"1"`` are the same doc).
* **Ties**: scored results are ranked by score descending, then by doc id **descending** as
  strings (code-point order). This is exactly trec_eval's ``comp_sim_docno`` (``strcmp(d2, d1)``),
  so tied scores rank the same here as in trec_eval/pytrec_eval. The order a system returned
  tied results in is ignored; a ranked list of bare ids is taken as given.
* **recall@k** = relevant docs in the top k / all relevant docs of the query (trec_eval
  ``recall_k``). A k beyond the run's length (or the corpus) just counts everything returned.
* **MRR@10** = 1 / rank of the first relevant doc within the top 10, else 0 (trec_eval
  ``recip_rank`` on a run cut at 10).
* **nDCG@k** uses *linear* gains, ``gain / log2(rank + 1)``, as trec_eval's ``ndcg_cut`` does;
  the ideal ranking sorts every judged doc of the query by gain (negative gains count as 0).
  ``gain="binary"`` gives every relevant doc gain 1; ``gain="exponential"`` uses ``2**g - 1``
  (Burges et al.; what some libraries call nDCG), for comparison only.
* **MAP@100** = sum of precision@rank over relevant docs in the top 100, divided by all
  relevant docs of the query (trec_eval ``map_cut_100``).
* **Which queries count**: a query with no relevant doc (absent from the qrels, or all gains
  below the threshold) cannot be scored; it is excluded and counted in
  ``EvalResult.n_excluded``. A query with relevant docs but missing from the run scores 0 on
  every metric (trec_eval ``-c``) and is counted in ``EvalResult.n_missing_from_run``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

ScoredResults = Sequence[tuple[object, float]] | Mapping[object, float] | Sequence[object]
Run = Mapping[object, ScoredResults]
"""``{query_id: results}``; see the module docstring for the accepted result shapes."""
Qrels = Mapping[object, Mapping[object, int]]
"""``{query_id: {doc_id: gain}}``."""

GAIN_TYPES = ("linear", "binary", "exponential")
DEFAULT_KS = (1, 10, 100)
MRR_CUTOFF = 10
NDCG_CUTOFF = 10
MAP_CUTOFF = 100


def ranked_ids(results: ScoredResults, query_id: object = "?") -> list[str]:
    """Doc ids of one query's results in rank order (rank 1 first), as strings.

    Scored results are sorted by score descending, ties by doc id descending (trec_eval).
    Raises ``ValueError`` for a duplicated doc id or a NaN score, naming the query and doc.
    """
    if isinstance(results, Mapping):
        pairs = list(results.items())
    else:
        items = list(results)
        if not items:
            return []
        if all(isinstance(item, (tuple, list)) and len(item) == 2 for item in items):
            pairs = items
        elif any(isinstance(item, (tuple, list)) for item in items):
            raise ValueError(
                f"query {query_id!r}: results mix (doc_id, score) pairs with bare ids; "
                "give one shape per query"
            )
        else:
            return _unique([str(d) for d in items], query_id)
    scored: list[tuple[str, float]] = []
    for doc_id, score in pairs:
        value = float(score)
        if math.isnan(value):
            raise ValueError(f"query {query_id!r}: doc {doc_id!r} has a NaN score")
        scored.append((str(doc_id), value))
    scored.sort(key=lambda pair: pair[0], reverse=True)  # ties: doc id descending ...
    scored.sort(key=lambda pair: -pair[1])  # ... kept by this stable sort on score
    return _unique([doc for doc, _ in scored], query_id)


def _unique(ids: list[str], query_id: object) -> list[str]:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(d for d in ids if d in seen or seen.add(d))
        raise ValueError(f"query {query_id!r}: doc {dup!r} appears more than once in the run")
    return ids


def _gains(judged: Mapping[object, int]) -> dict[str, int]:
    return {str(doc): int(g) for doc, g in judged.items()}


def recall_at_k(
    ranking: Sequence[str], judged: Mapping[str, int], k: int, relevance_threshold: int = 1
) -> float:
    """Share of the query's relevant docs found in the top ``k`` of ``ranking``."""
    _check_k(k)
    relevant = {d for d, g in judged.items() if g >= relevance_threshold}
    if not relevant:
        raise ValueError("recall is undefined for a query with no relevant document")
    return sum(1 for d in ranking[:k] if d in relevant) / len(relevant)


def mrr_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int = MRR_CUTOFF,
             relevance_threshold: int = 1) -> float:
    """1 / rank of the first relevant doc within the top ``k``, or 0 if none is there."""
    ranks = _relevant_ranks(ranking, judged, k, relevance_threshold)
    return 1.0 / ranks[0] if ranks else 0.0


def ndcg_at_k(
    ranking: Sequence[str],
    judged: Mapping[str, int],
    k: int = NDCG_CUTOFF,
    gain: str = "linear",
    relevance_threshold: int = 1,
) -> float:
    """nDCG of the top ``k``: DCG = sum gain(doc) / log2(rank + 1), divided by the ideal DCG.

    ``gain``: ``"linear"`` (the judged grade, trec_eval's ``ndcg_cut``), ``"binary"`` (1 for a
    doc with grade >= ``relevance_threshold``), or ``"exponential"`` (``2**grade - 1``).
    Returns 0 when no judged doc has a positive gain.
    """
    _check_k(k)
    gains = {d: _gain_value(g, gain, relevance_threshold) for d, g in judged.items()}
    dcg = sum(gains.get(d, 0.0) / math.log2(r + 1) for r, d in enumerate(ranking[:k], start=1))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def average_precision_at_k(ranking: Sequence[str], judged: Mapping[str, int],
                           k: int = MAP_CUTOFF, relevance_threshold: int = 1) -> float:
    """Sum of precision@rank at each relevant doc in the top ``k`` / number of relevant docs."""
    ranks = _relevant_ranks(ranking, judged, k, relevance_threshold)
    n_relevant = sum(1 for g in judged.values() if g >= relevance_threshold)
    if n_relevant == 0:
        raise ValueError("average precision is undefined for a query with no relevant document")
    return sum(hits / rank for hits, rank in enumerate(ranks, start=1)) / n_relevant


def _relevant_ranks(ranking: Sequence[str], judged: Mapping[str, int], k: int,
                    relevance_threshold: int) -> list[int]:
    """The ranks (1-based) within the top ``k`` that hold a relevant doc."""
    _check_k(k)
    return [rank for rank, doc in enumerate(ranking[:k], start=1)
            if judged.get(doc, 0) >= relevance_threshold]


def _gain_value(grade: int, gain: str, relevance_threshold: int) -> float:
    if gain == "linear":
        return float(max(grade, 0))
    if gain == "binary":
        return 1.0 if grade >= relevance_threshold else 0.0
    if gain == "exponential":
        return float(2 ** max(grade, 0) - 1)
    raise ValueError(f"unknown gain {gain!r}; use one of {', '.join(GAIN_TYPES)}")


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


@dataclass
class EvalResult:
    """Mean metrics over the scorable queries of one run, plus what was left out.

    ``metrics`` maps names such as ``"recall@10"``, ``"mrr@10"``, ``"ndcg@10"``, ``"map@100"``
    to means over the ``n_queries`` evaluated queries; ``metrics[primary_metric]`` is the
    headline number. ``per_query`` holds the same metrics for each evaluated query.
    """

    metrics: dict[str, float]
    primary_metric: str
    n_queries: int
    n_excluded: int
    n_missing_from_run: int
    excluded_query_ids: list[str] = field(default_factory=list)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def primary(self) -> float:
        """Value of the primary metric."""
        return self.metrics[self.primary_metric]

    def to_dict(self, per_query: bool = False) -> dict[str, object]:
        """A JSON-ready dict (per-query values only when asked)."""
        out: dict[str, object] = {
            "metrics": dict(self.metrics),
            "primary_metric": self.primary_metric,
            "n_queries": self.n_queries,
            "n_excluded": self.n_excluded,
            "n_missing_from_run": self.n_missing_from_run,
            "excluded_query_ids": list(self.excluded_query_ids),
            "settings": dict(self.settings),
        }
        if per_query:
            out["per_query"] = {q: dict(m) for q, m in self.per_query.items()}
        return out

    def table(self) -> str:
        """The metrics as a two-column plain-text table, with the query counts beneath."""
        width = max(len(name) for name in self.metrics)
        lines = [f"{name:<{width}}  {value:.4f}" for name, value in self.metrics.items()]
        lines.append(
            f"queries evaluated: {self.n_queries}; excluded (no relevant doc): "
            f"{self.n_excluded}; missing from run (scored 0): {self.n_missing_from_run}"
        )
        return "\n".join(lines)


def metric_names(ks: Iterable[int] = DEFAULT_KS) -> list[str]:
    """Names ``evaluate`` reports, in order, for the given recall cut-offs."""
    return [f"recall@{k}" for k in ks] + [
        f"mrr@{MRR_CUTOFF}",
        f"ndcg@{NDCG_CUTOFF}",
        f"map@{MAP_CUTOFF}",
    ]


def evaluate(
    run: Run,
    qrels: Qrels,
    ks: Iterable[int] = DEFAULT_KS,
    relevance_threshold: int = 1,
    gain: str = "linear",
    primary_metric: str = f"ndcg@{NDCG_CUTOFF}",
) -> EvalResult:
    """Score ``run`` against ``qrels``: recall@k for each k in ``ks``, MRR@10, nDCG@10, MAP@100.

    Queries are those of the qrels and the run together. One with no doc of gain >=
    ``relevance_threshold`` is excluded and counted; one with relevant docs but no entry in
    the run scores 0. ``gain`` chooses nDCG's gain (see ``ndcg_at_k``). Raises ``ValueError``
    for a bad ``k``, an unknown ``primary_metric`` or a malformed run.
    """
    ks = sorted({int(k) for k in ks})
    for k in ks:
        _check_k(k)
    if gain not in GAIN_TYPES:
        raise ValueError(f"unknown gain {gain!r}; use one of {', '.join(GAIN_TYPES)}")
    names = metric_names(ks)
    if primary_metric not in names:
        raise ValueError(f"primary_metric {primary_metric!r} is not computed; choose one of {names}")

    judged_by_query = {str(q): _gains(j) for q, j in qrels.items()}
    run_by_query = {str(q): r for q, r in run.items()}
    per_query: dict[str, dict[str, float]] = {}
    excluded: list[str] = []
    missing = 0
    for qid in sorted(set(judged_by_query) | set(run_by_query)):
        judged = judged_by_query.get(qid, {})
        if not any(g >= relevance_threshold for g in judged.values()):
            excluded.append(qid)
            continue
        if qid in run_by_query:
            ranking = ranked_ids(run_by_query[qid], qid)
        else:
            ranking = []
            missing += 1
        scores = {f"recall@{k}": recall_at_k(ranking, judged, k, relevance_threshold) for k in ks}
        scores[f"mrr@{MRR_CUTOFF}"] = mrr_at_k(ranking, judged, MRR_CUTOFF, relevance_threshold)
        scores[f"ndcg@{NDCG_CUTOFF}"] = ndcg_at_k(
            ranking, judged, NDCG_CUTOFF, gain, relevance_threshold
        )
        scores[f"map@{MAP_CUTOFF}"] = average_precision_at_k(
            ranking, judged, MAP_CUTOFF, relevance_threshold
        )
        per_query[qid] = scores

    n = len(per_query)
    means = {
        name: (float(np.mean([s[name] for s in per_query.values()])) if n else float("nan"))
        for name in names
    }
    return EvalResult(
        metrics=means,
        primary_metric=primary_metric,
        n_queries=n,
        n_excluded=len(excluded),
        n_missing_from_run=missing,
        excluded_query_ids=excluded,
        per_query=per_query,
        settings={"ks": ks, "relevance_threshold": relevance_threshold, "gain": gain},
    )


def recall_curve(
    run: Run, qrels: Qrels, max_k: int = 100, relevance_threshold: int = 1
) -> np.ndarray:
    """Mean recall@k for k = 1..``max_k`` (index k-1), over the same queries as ``evaluate``.

    Returns an array of shape ``(max_k,)``; all NaN when no query has a relevant doc.
    """
    _check_k(max_k)
    judged_by_query = {str(q): _gains(j) for q, j in qrels.items()}
    run_by_query = {str(q): r for q, r in run.items()}
    curves = []
    for qid, judged in judged_by_query.items():
        relevant = {d for d, g in judged.items() if g >= relevance_threshold}
        if not relevant:
            continue
        ranking = ranked_ids(run_by_query[qid], qid)[:max_k] if qid in run_by_query else []
        hits = np.zeros(max_k)
        for rank, doc in enumerate(ranking):
            if doc in relevant:
                hits[rank] = 1.0
        curves.append(np.cumsum(hits) / len(relevant))
    if not curves:
        return np.full(max_k, np.nan)
    return np.mean(curves, axis=0)
