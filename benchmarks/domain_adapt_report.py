"""The report of :mod:`benchmarks.domain_adapt_recipe`: the Markdown page (one row per start
model, the peers, step times and what each adaptation step did) and the training curves PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# What a reader of each preset's table must know (the full preset needs none).
PRESET_CAVEATS = {
    "small": ("A short run on a shared machine: pre-training and distillation saw well under one "
              "epoch of a 30k-text subset of the corpus and the fine-tuning a fifth of QBQTC train, "
              "so these numbers show where each step points after minutes of CPU, not what the "
              "recipe reaches when run to convergence (`--preset full`)."),
    "medium": ("One epoch of pre-training and one of distillation over a 60k-text subset of the "
               "corpus (the full corpus has about 207k texts), and one epoch of fine-tuning on all "
               "of QBQTC v1 train. Longer pre-training (`--preset full`) was not run."),
    "smoke": "A check that every step runs; its numbers mean nothing.",
}

ROWS = (
    ("default", "the default model as is"),
    ("extended", "extended vocabulary only"),
    ("extended+pretrained", "extended + MLM pre-trained"),
    ("extended+distilled", "extended + distilled from USE"),
    ("extended+wobert", "extended + jieba words, WoBERT tokenisation (`--compare-wobert`)"),
)


def markdown(state: dict, args: argparse.Namespace, stamp: dict, preset: dict[str, Any]) -> str:
    """The page for the recipe's ``state`` (``WORK/recipe.json``), run with ``args`` under
    ``preset`` (its settings)."""

    def get(key: str, *path: str) -> str:
        node: Any = state.get(key, {}).get("result")
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        return f"{node:.3f}" if isinstance(node, float) else "—"

    def secs(key: str) -> str:
        return f"{state[key]['wall_seconds']:.0f}" if key in state else "—"

    lines = [
        "# Domain adaptation of the default bi-encoder to Chinese (issue 6)",
        "",
        f"Command: `{stamp['command']}`  ",
        (f"Date: {stamp['date']}; git {stamp['git']}; preset `{args.preset}` "
        f"({json.dumps(preset)}); precision {args.precision}; "
        f"{args.threads} torch thread(s) on a shared 2-core Xeon (load averages per step in the JSON)."),
        "",
        ("QBQTC v1 test_public (1,743 pairs, Spearman of scores against 0/1/2 labels and mean "
        "nDCG@10 per query) and Chinese STS-B test (1,361 pairs, Spearman). Bi-encoder = cosine "
        "of the two texts' vectors; BertSim = the cross-encoder trained on QBQTC v1 train."),
        "",
        ("| start model | bi-encoder as is: QBQTC ρ | nDCG@10 | STS-B zh ρ | bi-encoder fine-tuned: "
        "QBQTC ρ | nDCG@10 | STS-B zh ρ | BertSim: QBQTC ρ | nDCG@10 | STS-B zh ρ |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in ROWS:
        base = f"evaluate/{key}"
        if key == "extended+wobert" and base + "/bi-encoder" not in state:
            continue
        lines.append(
            f"| {label} | {get(base + '/bi-encoder', 'qbqtc', 'spearman')} | "
            f"{get(base + '/bi-encoder', 'qbqtc', 'ndcg@10')} | "
            f"{get(base + '/bi-encoder', 'stsb_zh', 'spearman')} | "
            f"{get(base + '/bi-encoder-finetuned', 'qbqtc', 'spearman')} | "
            f"{get(base + '/bi-encoder-finetuned', 'qbqtc', 'ndcg@10')} | "
            f"{get(base + '/bi-encoder-finetuned', 'stsb_zh', 'spearman')} | "
            f"{get(base + '/bertsim', 'qbqtc', 'spearman')} | {get(base + '/bertsim', 'qbqtc', 'ndcg@10')} | "
            f"{get(base + '/bertsim', 'stsb_zh', 'spearman')} |"
        )
    for key, label in (("evaluate/use-teacher", "USE multilingual v3 teacher alone"),
                       ("evaluate/bm25", "BM25 (jieba)")):
        lines.append(f"| {label} | {get(key, 'qbqtc', 'spearman')} | {get(key, 'qbqtc', 'ndcg@10')} | "
                     f"{get(key, 'stsb_zh', 'spearman')} | | | | | | |")
    ft = state.get("evaluate/default/bertsim", {}).get("result", {}).get("training", {})
    lines += [
        "",
        (f"Fine-tuning (the same for every start model): {ft.get('train_pairs', '—')} QBQTC v1 train "
        f"pairs (whole queries, seeded), {preset['epochs']} epoch(s), batch 32, max "
        "length 64, best epoch on QBQTC v1 dev; bi-encoder with CoSENT (encoder_training), BertSim "
        "with MSE (rerank, encoder lr 1e-5, head 1e-4). BertSim's STS-B column scores sentence pairs "
        "with a model trained for query-title relevance (a transfer check only)."),
    ]
    caveat = PRESET_CAVEATS.get(args.preset)
    if caveat:
        lines += ["", f"**Preset `{args.preset}`.** {caveat}"]
    lines += ["", "Wall time of every step (seconds; CPU seconds and load in the JSON):", "",
              "| step | wall s |", "|---|---|"]
    lines += [f"| {key} | {secs(key)} |" for key in state]
    ext = state.get("extend", {}).get("result", {})
    pre = state.get("pretrain", {}).get("result", {})
    dis = state.get("distill", {}).get("result", {})
    lines += [
        "",
        (f"Extension: vocabulary {ext.get('old_vocab_size')} → {ext.get('new_vocab_size')} "
        f"({ext.get('added_chars')} characters, {ext.get('added_words')} words); [UNK] share of "
        f"corpus tokens {ext.get('unk_rate_before')} → {ext.get('unk_rate_after')}.  "),
    ]
    if "extend-wobert" in state:
        wob = state["extend-wobert"]["result"]
        lines.append(
            f"WoBERT extension: vocabulary {wob.get('old_vocab_size')} → {wob.get('new_vocab_size')} "
            f"({wob.get('added_chars')} characters, {wob.get('added_words')} jieba words); "
            f"WoBERT pre-tokenisation {'on' if wob.get('wobert') else 'off'}.  ")
    lines += [
        (f"Pre-training: {pre.get('steps')} steps, {pre.get('tokens_seen')} tokens, "
        f"{pre.get('tokens_per_second')} tokens/s; held-out perplexity "
        f"{pre.get('heldout_perplexity_before')} → {pre.get('heldout_perplexity_after')}.  "),
        (f"Distillation: {dis.get('steps')} steps; held-out cosine to the teacher "
        f"{dis.get('heldout_cosine_before')} → {dis.get('heldout_cosine_after')}; teacher "
        f"{dis.get('teacher_seconds')} s."),
        "",
        f"![training curves]({Path(args.results).name}.png)",
    ]
    return "\n".join(lines) + "\n"


def plot_curves(state: dict, stamp: dict, path: Path) -> None:
    """PNG of the training curves: MLM loss (pre-training) and MSE to the teacher
    (distillation) per step, with the held-out values before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = (("pretrain", "MLM loss", "heldout_loss_before", "heldout_loss_after"),
              ("distill", "MSE to the USE teacher", "heldout_mse_before", "heldout_mse_after"))
    for ax, (step, label, before, after) in zip(axes, panels):
        result = state.get(step, {}).get("result", {})
        curve = result.get("loss_curve") or []
        if curve:
            ax.plot([c[0] for c in curve], [c[1] for c in curve], label="training (window mean)")
            last = curve[-1][0]
            ax.scatter([0, last], [result.get(before), result.get(after)], color="C3", zorder=3,
                       label=f"held-out: {result.get(before):.4g} → {result.get(after):.4g}")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(label)
        ax.set_title(f"{step}: {result.get('steps', 0)} steps, {result.get('epochs', 0)} epoch(s)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.text(0.01, 0.01, f"{stamp['command']}\n{stamp['date']}  git {stamp['git']}",
             fontsize=6, family="monospace", va="bottom")
    fig.subplots_adjust(bottom=0.22, wspace=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)
