"""The report of :mod:`benchmarks.anisotropy_real`: ``anisotropy.md`` (quality, anisotropy,
training notes and the paired-bootstrap changes) and the ``anisotropy.png`` histograms."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def markdown(report: dict) -> str:
    """The results as a Markdown page: quality table, anisotropy table, training notes."""
    rows = report["systems"]
    lines = [
        "# Anisotropy, pooling, whitening and fine-tuning on real data",
        "",
        (f"Model: {report['model']}. Produced by `python -m benchmarks.anisotropy_real` "
        f"(eval stage {report['seconds']:.0f} s on the shared 2-core machine, {report['settings']['precision']})."),
        "",
        "## Quality",
        "",
    ]
    lines += _table(
        ("system", "dim", "STS-B en test Spearman", "STS-B zh test Spearman",
         "QBQTC test_public R@10", "R@100", "nDCG@10"),
        ([r["label"], r["dimension"], *(f"{x:.4f}" for x in (
            r["stsb_en_spearman"], r["stsb_zh_spearman"],
            *(r["qbqtc"][m] for m in ("recall@10", "recall@100", "ndcg@10"))))] for r in rows),
    )
    anisotropy = ("random_pair_cosine_mean", "top1_variance_share", "top10_variance_share")
    lines += [
        "",
        "## Anisotropy",
        "",
        ("Random-pair cosine (mean of 20,000 random pairs of different texts; 0 = isotropic) and the "
        "share of variance in the top 1 / top 10 principal components of the unit vectors "
        "(isotropic 384-dim vectors: about 0.003 / 0.026)."),
        "",
    ]
    lines += _table(
        ("system", "STS-B en sentences: rand cos", "top1", "top10", "QBQTC titles: rand cos",
         "top1", "top10"),
        ([r["label"], *(f"{r[part][figure]:.3f}"
                        for part in ("anisotropy_stsb_en", "anisotropy_qbqtc_titles")
                        for figure in anisotropy)] for r in rows),
    )
    d = report["data"]
    lines += [
        "",
        "## How it was measured",
        "",
        (f"- STS-B: Spearman of cosine against the gold 0–5 score on the test splits "
        f"({d['stsb_en_test_pairs']} en, {d['stsb_zh_test_pairs']} zh pairs; files split on tabs only)."),
        (f"- QBQTC v1 pooled: corpus = all {d['qbqtc_corpus']} v1 titles (train + dev + test_public), "
        f"queries = the {d['qbqtc_test_public_queries']} test_public queries, relevant = label >= 1; "
        "exact inner-product search on unit vectors. Titles judged for other queries count as "
        "non-relevant (the pool is incomplete), so absolute recall is a lower bound."),
        (f"- Whitening (mean removal, W = U·diag(1/√s), `retrieval.whitening.fit_whitening`) of the "
        f"model's own unit vectors, fitted without labels: on {d['whitening_fit']['stsb_en']} en / "
        f"{d['whitening_fit']['stsb_zh']} zh STS-B train sentences for STS-B, and on the QBQTC corpus "
        "itself for retrieval (what `adrecall build --whiten` does), so its QBQTC-title anisotropy "
        "is ~0 by construction; its STS-B en figures are out of sample."),
        "- first-last average = masked mean of the average of hidden_states[1] and hidden_states[-1].",
        ("- The model's own pooling is mean pooling + L2 normalisation, so its rows equal mean "
         "pooling's up to bf16 rounding."),
        ("- The default model knows 244 CJK characters; most Chinese characters become [UNK], so every "
        "Chinese figure is weak for every variant."),
    ]
    t = report.get("training")
    if t:
        cfg = t["config"]
        base = next((r for r in rows if r["system"] == "model"), None)
        tuned = next((r for r in rows if r["system"] == "finetuned"), None)
        lines += [
            "",
            "## Fine-tuning",
            "",
            (f"MultipleNegativesRankingLoss on QBQTC v1 train only: {t['train_rows']} (query, title "
            f"with label >= 1) rows, {cfg['hard_negatives']} hard negative per row from "
            f"{t['hard_negatives'].get('negatives', 0)} negatives mined for "
            f"{t['hard_negatives'].get('queries', 0)} queries (rotated over each query's rows) out of "
            f"an index of the train titles (top {cfg['mining_candidates']} of the base model; "
            f"{t['hard_negatives'].get('skipped_relevant_text', 0)} labelled-relevant candidates or "
            "duplicates of one skipped; rows short of mined negatives filled with random train "
            f"titles: {t['hard_negatives'].get('random_filled', 0)}), batch "
            f"{cfg['batch_size']}, lr {cfg.get('lr', cfg.get('learning_rate')):g}, "
            f"{cfg['epochs']} epoch, max_length "
            f"{cfg.get('max_length', cfg.get('training_max_seq_length'))}, precision "
            f"{cfg.get('precision', 'bf16' if cfg.get('bf16') else 'fp32')}; {t['steps']} steps in "
            f"{t['seconds'] / 60:.1f} min. Dev = QBQTC v1 dev, {t['primary_metric']}: "
            f"{t['dev_before'][t['primary_metric']]:.4f} before, "
            f"{t['best'].get(t['primary_metric'], float('nan')):.4f} at the kept epoch."),
        ]
        if base and tuned:
            qb, qt = base["qbqtc"], tuned["qbqtc"]
            lines.append(
                f"\nChange against the base model's own pooling on QBQTC test_public: recall@10 "
                f"{qb['recall@10']:.4f} → {qt['recall@10']:.4f} ({qt['recall@10'] - qb['recall@10']:+.4f}), "
                f"recall@100 {qb['recall@100']:.4f} → {qt['recall@100']:.4f} "
                f"({qt['recall@100'] - qb['recall@100']:+.4f}); STS-B en Spearman "
                f"{base['stsb_en_spearman']:.4f} → {tuned['stsb_en_spearman']:.4f}, zh "
                f"{base['stsb_zh_spearman']:.4f} → {tuned['stsb_zh_spearman']:.4f}."
            )
    changes = report.get("qbqtc_change_vs_own_pooling") or {}
    if changes:
        labels = {r["system"]: r["label"] for r in rows}
        lines += [
            "",
            "## Is the QBQTC change real?",
            "",
            (f"Per-query change against the model's own pooling over the "
            f"{next(iter(changes.values()))['recall@10']['queries']} test_public queries: mean, 95% "
            "paired-bootstrap interval (10,000 resamples of the queries), queries up / down."),
            "",
        ]
        lines += _table(
            ("system", "Δ recall@10", "95% interval", "up / down", "Δ recall@100", "95% interval",
             "up / down"),
            ([labels.get(name, name), *(cell for m in ("recall@10", "recall@100")
                                        for cell in _change_cells(c[m]))]
             for name, c in changes.items()),
        )
    return "\n".join(lines) + "\n"


def _change_cells(change: dict[str, float]) -> list[str]:
    """Mean change, its 95% interval and queries up / down, as table cells."""
    return [f"{change['mean']:+.4f}", f"[{change['ci95_low']:+.4f}, {change['ci95_high']:+.4f}]",
            f"{change['queries_up']} / {change['queries_down']}"]


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    return [_row(header), "|---|" + "---:|" * (len(header) - 1), *(_row(row) for row in rows)]


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def plot(series: list[tuple[str, dict[str, np.ndarray]]], path: Path) -> None:
    """Histograms of random-pair cosines on the STS-B en sentences and the QBQTC titles, one
    outline per ``(label, {part: vectors})`` series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from encoder_training.diagnostics import random_pairs, unit_rows

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    bins = np.linspace(-0.4, 1, 71)
    titles = {"stsb_en_sentences": "STS-B en test sentences", "qbqtc_docs": "QBQTC v1 titles"}
    for ax, (part, title) in zip(axes, titles.items()):
        for label, parts in series:
            if part in parts:
                unit = unit_rows(parts[part])
                i, j = random_pairs(len(unit), 20_000, 0)
                ax.hist(np.sum(unit[i] * unit[j], axis=1), bins=bins, histtype="step", label=label, density=True)
        ax.set_title(f"random-pair cosine: {title}", fontsize=9)
        ax.set_xlabel("cosine")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
