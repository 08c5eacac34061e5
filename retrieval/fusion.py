"""Reciprocal rank fusion (RRF) of several runs, e.g. BM25 and dense retrieval.

RRF (Cormack, Clarke and Büttcher, SIGIR 2009) scores each doc by ``sum_r w_r / (c + rank_r)``
over the runs that returned it, with rank 1 for a run's best doc and ``c = 60`` by default.
It needs no score calibration, which is why it suits mixing BM25 scores with cosines.
Each input run is ranked with the same rule as the metrics (score descending, ties by doc id
descending; see ``retrieval.metrics``), so fusion is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.metrics import Run, ranked_ids

DEFAULT_RRF_C = 60


def reciprocal_rank_fusion(
    runs: Sequence[Run],
    c: float = DEFAULT_RRF_C,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
    top_n: int | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Fuse ``runs`` into one run ``{query_id: [(doc_id, rrf_score), ...]}``, best first.

    ``c``: the RRF constant (> 0). ``weights``: one non-negative weight per run (default 1).
    ``depth``: use only each run's top ``depth`` results. ``top_n``: keep that many fused
    results per query. A query present in any run appears in the output. Ties in the fused
    score are ordered by doc id descending, as everywhere in the metrics.
    """
    if not runs:
        raise ValueError("reciprocal_rank_fusion needs at least one run")
    if not c > 0:
        raise ValueError(f"the RRF constant c must be positive, got {c!r}")
    if weights is None:
        weights = [1.0] * len(runs)
    if len(weights) != len(runs):
        raise ValueError(f"got {len(weights)} weights for {len(runs)} runs")
    if any(w < 0 for w in weights):
        raise ValueError(f"weights must be non-negative, got {list(weights)}")
    for name, value in (("depth", depth), ("top_n", top_n)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value!r}")

    fused: dict[str, dict[str, float]] = {}
    for run, weight in zip(runs, weights):
        for qid, results in run.items():
            scores = fused.setdefault(str(qid), {})
            ranking = ranked_ids(results, qid)
            if depth is not None:
                ranking = ranking[:depth]
            for rank, doc in enumerate(ranking, start=1):
                scores[doc] = scores.get(doc, 0.0) + weight / (c + rank)
    out: dict[str, list[tuple[str, float]]] = {}
    for qid, scores in fused.items():
        order = ranked_ids(scores, qid)
        if top_n is not None:
            order = order[:top_n]
        out[qid] = [(doc, scores[doc]) for doc in order]
    return out
