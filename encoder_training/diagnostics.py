"""Anisotropy diagnostics: how crowded is each pooling variant's vector space?

For every variant (raw CLS, mean, first-last average, the model's own pooling, and optionally
BERT-whitened versions of the model's own vectors) on a sample of the user's texts:

* **random-pair cosine**: mean (and spread) of the cosine between random pairs of different
  texts. Near 0 is isotropic; 0.6–0.9 means every pair looks alike and nearest neighbours mean
  little.
* **relevant-pair cosine**, when labelled pairs are given: mean cosine of (query, text) pairs
  with ``label >= threshold``, of pairs labelled below it, and the AUC with which cosine
  separates the two (0.5 = chance). A high relevant-pair cosine alone proves nothing if random
  pairs score as high: compare it with the random-pair figure.
* **variance share of the top 1 / top 10 principal components** of the L2-normalised vectors
  (centred): the share of all variance that lies in a few directions. Isotropic ``d``-dim
  vectors have about ``1/d`` and ``10/d``.
* **mean-vector norm**: length of the average unit vector (0 isotropic, 1 all identical).

Whitened rows are fitted on the same sample they are measured on, so their random-pair cosine
is near 0 by construction; their relevant-pair figures and AUC are the informative part.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from adrecall import text_files
from encoder_training.pairs import Pairs
from encoder_training.pooling_variants import VARIANT_LABELS, VARIANTS, PoolingEmbedder


@dataclass(frozen=True)
class VariantDiagnostics:
    """Anisotropy figures of one pooling variant on one text sample."""

    variant: str
    label: str
    dimension: int
    n_texts: int
    n_random_pairs: int
    random_pair_cosine_mean: float
    random_pair_cosine_std: float
    top1_variance_share: float
    top10_variance_share: float
    mean_vector_norm: float
    n_relevant_pairs: int = 0
    n_irrelevant_pairs: int = 0
    relevant_pair_cosine_mean: float | None = None
    irrelevant_pair_cosine_mean: float | None = None
    relevant_vs_irrelevant_auc: float | None = None


@dataclass
class DiagnosticsReport:
    """Figures for every variant, the settings used, and the random-pair cosines for plots."""

    model: str
    n_texts: int
    settings: dict[str, object]
    variants: list[VariantDiagnostics]
    random_cosines: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures (the raw cosine samples are left out)."""
        return {
            "model": self.model,
            "n_texts": self.n_texts,
            "settings": dict(self.settings),
            "variants": [asdict(v) for v in self.variants],
        }

    def text(self) -> str:
        """A plain-text table of the figures, one row per variant, with a reading guide."""
        labelled = any(v.n_relevant_pairs for v in self.variants)
        head = f"{'variant':<28} {'dim':>4} {'rand cos':>9} {'± sd':>6} {'top1 var':>9} {'top10 var':>9} {'|mean|':>7}"
        if labelled:
            head += f" {'rel cos':>8} {'irrel cos':>9} {'AUC':>6}"
        lines = [
            (f"anisotropy diagnostics: model {self.model}, {self.n_texts} texts, "
            f"{self.variants[0].n_random_pairs if self.variants else 0} random pairs"),
            "",
            head,
            "-" * len(head),
        ]
        for v in self.variants:
            row = (
                f"{v.label:<28} {v.dimension:>4} {v.random_pair_cosine_mean:>9.3f} "
                f"{v.random_pair_cosine_std:>6.3f} {v.top1_variance_share:>9.3f} "
                f"{v.top10_variance_share:>9.3f} {v.mean_vector_norm:>7.3f}"
            )
            if labelled:
                row += (
                    f" {_fmt(v.relevant_pair_cosine_mean):>8} {_fmt(v.irrelevant_pair_cosine_mean):>9}"
                    f" {_fmt(v.relevant_vs_irrelevant_auc):>6}"
                )
            lines.append(row)
        lines += [
            "",
            ("rand cos: mean cosine of random pairs of different texts (0 = isotropic; 0.6-0.9 = "
            "a narrow cone where every pair looks alike)"),
            ("top1/top10 var: share of variance in the first 1/10 principal components of the "
            "unit vectors (isotropic: about 1/dim and 10/dim)"),
            "|mean|: length of the mean unit vector (0 = isotropic, 1 = all vectors identical)",
        ]
        if labelled:
            lines.append(
                f"rel/irrel cos: mean cosine of labelled pairs with label >= "
                f"{self.settings.get('relevance_threshold')} / below it; AUC: how well cosine "
                "separates them (0.5 = chance)"
            )
        if any(v.variant.startswith("whitened") for v in self.variants):
            lines.append(
                "whitened rows are fitted on this same sample, so their random-pair cosine is ~0 "
                "by construction; judge them by the labelled-pair AUC"
            )
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# ---------------------------------------------------------------- numeric helpers


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def random_pairs(n: int, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i != j``: every pair when there are at most ``n_pairs``, else a
    uniform random sample of ``n_pairs`` (with replacement)."""
    if n < 2:
        raise ValueError(f"random pairs need at least 2 texts, got {n}")
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1, got {n_pairs}")
    if n * (n - 1) // 2 <= n_pairs:
        i, j = np.triu_indices(n, k=1)
        return i, j
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_pairs)
    j = (i + rng.integers(1, n, size=n_pairs)) % n  # never i itself
    return i, j


def pair_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two equally shaped arrays."""
    return np.sum(unit_rows(a) * unit_rows(b), axis=1)


def variance_shares(vectors: np.ndarray, ks: Sequence[int] = (1, 10)) -> dict[int, float]:
    """Share of total variance in the top ``k`` principal components of the unit vectors."""
    unit = unit_rows(vectors)
    centred = unit - unit.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False) ** 2
    total = float(s.sum())
    if total <= 0:
        return {k: 1.0 for k in ks}
    return {k: float(s[:k].sum() / total) for k in ks}


def separation_auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    rank_sum = ranks[: len(positive)].sum()
    n_p, n_n = len(positive), len(negative)
    return float((rank_sum - n_p * (n_p + 1) / 2) / (n_p * n_n))


def variant_diagnostics(
    variant: str,
    label: str,
    vectors: np.ndarray,
    *,
    n_pairs: int = 20_000,
    seed: int = 0,
    query_vectors: np.ndarray | None = None,
    text_vectors: np.ndarray | None = None,
    pair_labels: np.ndarray | None = None,
    relevance_threshold: float = 1.0,
) -> tuple[VariantDiagnostics, np.ndarray]:
    """Figures for one variant, and the random-pair cosines they came from.

    ``query_vectors``/``text_vectors``/``pair_labels`` (parallel) add the labelled-pair figures.
    """
    i, j = random_pairs(len(vectors), n_pairs, seed)
    unit = unit_rows(vectors)
    cosines = np.sum(unit[i] * unit[j], axis=1)
    shares = variance_shares(vectors, (1, 10))
    extra: dict[str, object] = {}
    if pair_labels is not None and query_vectors is not None and text_vectors is not None:
        cos = pair_cosines(query_vectors, text_vectors)
        relevant = pair_labels >= relevance_threshold
        extra = {
            "n_relevant_pairs": int(relevant.sum()),
            "n_irrelevant_pairs": int((~relevant).sum()),
            "relevant_pair_cosine_mean": float(cos[relevant].mean()) if relevant.any() else None,
            "irrelevant_pair_cosine_mean": float(cos[~relevant].mean()) if (~relevant).any() else None,
            "relevant_vs_irrelevant_auc": separation_auc(cos[relevant], cos[~relevant]),
        }
    figures = VariantDiagnostics(
        variant=variant,
        label=label,
        dimension=int(vectors.shape[1]),
        n_texts=len(vectors),
        n_random_pairs=len(i),
        random_pair_cosine_mean=float(cosines.mean()),
        random_pair_cosine_std=float(cosines.std()),
        top1_variance_share=shares[1],
        top10_variance_share=shares[10],
        mean_vector_norm=float(np.linalg.norm(unit.mean(axis=0))),
        **extra,  # type: ignore[arg-type]
    )
    return figures, cosines.astype(np.float32)


# ---------------------------------------------------------------- reading texts


def read_texts(
    path: str | Path, *, text_column: str = "text", max_texts: int | None = None, seed: int = 0
) -> list[str]:
    """Texts from a ``.txt`` file (one per line, blank lines skipped) or a table's column, read
    by :func:`adrecall.text_files.read_texts` (stripped, not normalised, duplicates kept; a
    blank or non-text cell is refused naming its row). At least 2 are needed.

    With ``max_texts``, a seeded uniform sample of that many (file order kept).
    """
    if max_texts is not None and max_texts < 2:
        raise ValueError(f"max_texts must be at least 2, got {max_texts}")
    texts = text_files.read_texts(path, text_columns=[text_column], normalize=False,
                                  dedupe=False, blank_cells="error", what="text")
    if len(texts) < 2:
        raise ValueError(f"{path}: {len(texts)} text(s); diagnostics need at least 2 (best 500+)")
    if max_texts is not None and len(texts) > max_texts:
        keep = sorted(random.Random(seed).sample(range(len(texts)), max_texts))
        texts = [texts[k] for k in keep]
    return texts


# ---------------------------------------------------------------- the whole diagnosis


def parse_whiten_dims(spec: str | None, dimension: int | None = None) -> list[int | None]:
    """``"full,256,128"`` → ``[None, 256, 128]`` (``None`` = keep every dimension)."""
    if not spec:
        return []
    dims: list[int | None] = []
    for part in spec.split(","):
        part = part.strip().lower()
        if part in ("full", "all"):
            dims.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            raise ValueError(
                f"whitening dimension {part!r} is not a number; give e.g. --whiten-dim 256 128"
            ) from None
        if value < 1 or (dimension is not None and value > dimension):
            raise ValueError(
                f"whitening dimension {value} must be between 1 and "
                + (f"the model's {dimension}" if dimension else "the model's dimension")
            )
        dims.append(value)
    return dims


def diagnose(
    texts: Sequence[str],
    *,
    model: str | Path | PoolingEmbedder | None = None,
    pairs: Pairs | None = None,
    variants: Sequence[str] = VARIANTS,
    whiten_dims: Sequence[int | None] = (),
    relevance_threshold: float = 1.0,
    n_pairs: int = 20_000,
    seed: int = 0,
    batch_size: int = 64,
    max_length: int | None = None,
    normalize_text: bool = True,
    progress: bool = False,
) -> DiagnosticsReport:
    """Embed ``texts`` (and the labelled ``pairs``) under each pooling variant and measure them.

    ``whiten_dims`` adds BERT-whitened versions of the model's own vectors (``None`` = full
    dimension), fitted on ``texts``; they need :mod:`retrieval.whitening`.
    """
    texts = list(texts)
    if len(texts) < 2:
        raise ValueError(f"diagnostics need at least 2 texts, got {len(texts)}")
    embedder = (
        model
        if isinstance(model, PoolingEmbedder)
        else PoolingEmbedder(model, max_length=max_length, normalize_text=normalize_text)
    )
    wanted = list(dict.fromkeys(list(variants) + (["model"] if whiten_dims else [])))
    for d in whiten_dims:
        need = embedder.dimension if d is None else d
        if need > len(texts):
            raise ValueError(
                f"whitening to {need} dimensions needs at least {need} texts to fit on, got "
                f"{len(texts)}; give more texts or a smaller dimension (e.g. --whiten 128)"
            )
    sample = embedder.embed(texts, wanted, batch_size=batch_size, progress=progress)
    query_vecs: dict[str, np.ndarray] = {}
    text_vecs: dict[str, np.ndarray] = {}
    if pairs is not None and len(pairs):
        query_vecs = embedder.embed(pairs.queries, wanted, batch_size=batch_size, progress=progress)
        text_vecs = embedder.embed(pairs.texts, wanted, batch_size=batch_size, progress=progress)

    entries: list[tuple[str, str, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
    for v in variants:
        entries.append((v, VARIANT_LABELS[v], sample[v], query_vecs.get(v), text_vecs.get(v)))
    if whiten_dims:
        from retrieval.whitening import fit_whitening

        own = unit_rows(sample["model"]).astype(np.float32)  # what the index stores
        for d in whiten_dims:
            whitening = fit_whitening(own, d)
            name = f"whitened_{'full' if d is None else d}"
            label = f"whitened model ({whitening.output_dim})"
            q = whitening.apply(unit_rows(query_vecs["model"])) if query_vecs else None
            t = whitening.apply(unit_rows(text_vecs["model"])) if text_vecs else None
            entries.append((name, label, whitening.apply(own), q, t))

    figures: list[VariantDiagnostics] = []
    cosines: dict[str, np.ndarray] = {}
    labels = pairs.labels if pairs is not None and len(pairs) else None
    for name, label, vecs, q, t in entries:
        fig, cos = variant_diagnostics(
            name, label, vecs, n_pairs=n_pairs, seed=seed, query_vectors=q, text_vectors=t,
            pair_labels=labels, relevance_threshold=relevance_threshold,
        )
        figures.append(fig)
        cosines[name] = cos
    settings: dict[str, object] = {
        "n_pairs": n_pairs,
        "seed": seed,
        "max_length": embedder.max_length,
        "normalize_text": embedder.normalize_text,
        "relevance_threshold": relevance_threshold,
        "labelled_pairs": len(pairs) if pairs is not None else 0,
        "whiten_dims": ["full" if d is None else d for d in whiten_dims],
        "first_last_avg": "mean of hidden_states[1] and hidden_states[-1], masked mean over tokens",
        "variance_share": "PCA of L2-normalised, centred vectors",
    }
    return DiagnosticsReport(embedder.label, len(texts), settings, figures, cosines)


# ---------------------------------------------------------------- output


def plot_cosine_histograms(report: DiagnosticsReport, path: str | Path) -> Path:
    """A PNG with one histogram of random-pair cosines per variant (shared x axis, -1..1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v.variant for v in report.variants if v.variant in report.random_cosines]
    if not names:
        raise ValueError("the report holds no random-pair cosines to plot")
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 1.3 * len(names) + 0.8), sharex=True)
    axes = np.atleast_1d(axes)
    bins = np.linspace(-1, 1, 81)
    for ax, fig_row in zip(axes, (v for v in report.variants if v.variant in names)):
        values = report.random_cosines[fig_row.variant]
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        ax.axvline(float(values.mean()), color="tab:red", linewidth=1)
        ax.set_ylabel(fig_row.label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
    axes[-1].set_xlabel("cosine of random pairs of different texts (red: mean)")
    fig.suptitle(f"anisotropy: {Path(str(report.model)).name}, {report.n_texts} texts", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(report: DiagnosticsReport, out: str | Path) -> dict[str, Path]:
    """Write ``out`` (text), and beside it ``.json`` and ``.png``; return the three paths."""
    out = Path(out)
    if out.suffix.lower() in (".json", ".png"):
        raise ValueError(f"report path {out} should be the text report (e.g. report.txt)")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"text": out, "json": out.with_suffix(".json"), "png": out.with_suffix(".png")}
    paths["text"].write_text(report.text(), encoding="utf-8")
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_cosine_histograms(report, paths["png"])
    return paths
