"""Training BertSim on labelled pairs: MSE, AdamW (head at 10× the encoder's learning rate),
linear warm-up then linear decay, gradient clipping, dev evaluation every epoch, the best epoch
kept, and resumable checkpoints.

``out`` ends up holding the best model (load it with ``BertSim.load(out)``); while a
run is going it also holds ``checkpoint/``. It must be new, empty or a BertSim folder (replaced
only with ``overwrite``): anything else is refused before the model loads. Running the same
command again after a kill resumes from that checkpoint: the data order of every epoch is a
function of (seed, epoch), and the checkpoint keeps optimizer and RNG state, so a resumed run
ends where an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from adrecall.adaptation_history import added_vocab_start
from adrecall.backends import torch_backend
from adrecall.folders import BERTSIM
from adrecall.lr_schedule import lr_multiplier, set_lr, warmup_steps
from adrecall.models import model_label, resolve_model_dir
from adrecall.precision import autocast
from adrecall.resume_checkpoint import prepare_resumable_out, remove_checkpoints
from adrecall.run_summary import RunSummary
from rerank.checkpoint import restore_checkpoint, save_checkpoint
from rerank.config import MAX_LENGTH_QUANTILE, TrainConfig
from rerank.first_stage import (
    FirstStage,
    check_first_stage,
    fusion_on_dev,
    training_negatives,
)
from rerank.metrics import evaluate_scores, is_better
from rerank.model import BertSim
from rerank.pairs import LabelledPairs, PairFormat, read_pairs
from rerank.scoring import score_pairs


@dataclass(frozen=True)
class StepInfo:
    """What ``on_step`` callbacks receive after each optimizer step."""

    global_step: int
    epoch: int
    loss: float
    lrs: dict[str, float]


@dataclass(frozen=True)
class TrainResult(RunSummary):
    """Where the best model is (``out``), which epoch it came from and every epoch's metrics;
    ``seconds`` is the run's wall time, across resumes."""

    best_epoch: int
    best_metrics: dict
    best_step: int = 0
    history: list[dict] = field(default_factory=list)
    resumed_from_step: int | None = None


class RowRateAdamW(torch.optim.AdamW):
    """AdamW in which a group may give the rows ``rows_from:`` of its one matrix a learning rate
    ``row_lr_factor`` × the group's.

    After the ordinary step those rows' change is multiplied by the factor, which for AdamW
    (decoupled weight decay included) is exactly a step at the higher rate. Used for the
    embedding rows a vocabulary extension added: random rows that one epoch at an encoder's
    rate barely moves.
    """

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def, override]
        before = [
            (param, group["rows_from"], group["row_lr_factor"],
             param[group["rows_from"]:].clone())
            for group in self.param_groups
            if group.get("rows_from") is not None
            for param in group["params"]
        ]
        loss = super().step(closure)
        for param, start, factor, old in before:
            param[start:].copy_(old + factor * (param[start:] - old))
        return loss


def build_optimizer(
    model: BertSim, config: TrainConfig, new_rows_from: int | None = None
) -> RowRateAdamW:
    """AdamW with named groups: encoder/head × decayed/not (biases, LayerNorm), and, when a
    vocabulary extension added rows from id ``new_rows_from`` on, the word embeddings in a
    group of their own whose added rows learn at ``new_vocab_lr_factor`` × the encoder's rate.

    Each group carries ``base_lr``; the schedule sets ``lr = base_lr × factor(step)``, so the
    head's rate stays ``head_lr_factor`` × the encoder's throughout.
    """
    embeddings = model.encoder.get_input_embeddings().weight
    split_rows = new_rows_from is not None and new_rows_from < embeddings.shape[0]
    groups = []
    for part, module, lr in (
        ("encoder", model.encoder, config.encoder_lr),
        ("head", model.head, config.head_lr),
    ):
        decay, no_decay = [], []
        for name, param in module.named_parameters():
            if not param.requires_grad or (split_rows and param is embeddings):
                continue
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
        for suffix, params, wd in (("", decay, config.weight_decay), ("_no_decay", no_decay, 0.0)):
            if params:
                groups.append(
                    {"params": params, "lr": lr, "base_lr": lr, "weight_decay": wd,
                     "name": part + suffix}
                )
    if split_rows:
        groups.append(
            {"params": [embeddings], "lr": config.encoder_lr, "base_lr": config.encoder_lr,
             "weight_decay": config.weight_decay, "name": "word_embeddings",
             "rows_from": int(new_rows_from), "row_lr_factor": config.new_vocab_lr_factor}
        )
    return RowRateAdamW(groups, lr=config.encoder_lr)


def train_reranker(
    train: str | Path | LabelledPairs,
    out: str | Path,
    *,
    model: str | Path | None = None,
    dev: str | Path | LabelledPairs | None = None,
    config: TrainConfig | None = None,
    pair_format: PairFormat | None = None,
    first_stage: FirstStage | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Train BertSim from the encoder ``model`` on ``train``, keep the epoch best on ``dev``,
    save it in ``out``.

    ``model`` is ``"default"`` (also ``None``) or a local Hugging Face / sentence-transformers
    folder. ``train``/``dev`` are pairs tables (CSV, TSV, JSONL, Parquet) or
    :class:`LabelledPairs`. Every input is validated before the model loads. If ``out`` holds
    a checkpoint of the same run (same model, data and settings), training resumes from it;
    without ``dev`` the last epoch is kept. ``on_step`` is called after every optimizer step
    (progress, tests).

    ``first_stage`` is the retriever BertSim will rerank (:class:`rerank.first_stage.
    FirstStage`): ``config.mined_negatives`` mines negatives from it, and with ``dev`` the
    weight that fuses its scores with BertSim's is chosen on dev and stored in the manifest.
    """
    config = config or TrainConfig()
    fmt = pair_format or PairFormat()
    out_dir = Path(out)
    train_pairs = _as_pairs(train, fmt, "train")
    dev_pairs = _as_pairs(dev, fmt, "dev") if dev is not None else None
    check_first_stage(config, first_stage)
    label = model_label(model)
    fingerprint = _fingerprint(config, label, fmt, train_pairs, dev_pairs) | {
        "first_stage": first_stage.describe() if first_stage is not None else None
    }
    model_dir = resolve_model_dir(model)
    checkpoint = prepare_resumable_out(
        out_dir, BERTSIM, fingerprint, overwrite=config.overwrite,
        inputs=(model_dir, *([fingerprint["first_stage"]["index"]]
                             if (fingerprint["first_stage"] or {}).get("index") else [])),
    )
    negatives = training_negatives(train_pairs, first_stage, config)
    train_pairs = negatives.pairs

    bertsim = BertSim.from_encoder(
        model,
        pooling=config.pooling,
        max_length=config.max_length,
        normalize=config.normalize,
        seed=config.seed,
        precision=config.precision,
    )
    if config.max_length is None:
        bertsim.max_length = fit_max_length(bertsim, train_pairs)
    with torch.no_grad():  # start the output at the mean label: faster, calmer first steps
        bertsim.head.out.bias.fill_(float(train_pairs.labels.mean()))
    new_rows_from = added_vocab_start(model_dir)
    optimizer = build_optimizer(bertsim, config, new_rows_from)
    steps_per_epoch = math.ceil(len(train_pairs) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = warmup_steps(total_steps, config.warmup_ratio)

    state = {
        "fingerprint": fingerprint,
        "global_step": 0,
        "epoch": 0,
        "step_in_epoch": 0,
        "epoch_loss_sum": 0.0,
        "best_value": None,
        "best_epoch": 0,
        "best_step": 0,
        "best_metrics": {},
        "evals_since_best": 0,
        "stopped_early": False,
        "history": [],
        "wall_seconds": 0.0,
    }
    resumed_from = None
    if checkpoint is not None:
        state = restore_checkpoint(checkpoint, bertsim, optimizer)
        state.pop("optimizer", None)
        resumed_from = state["global_step"]
        _say(config, f"resuming from {checkpoint} at step {resumed_from} "
             f"(epoch {state['epoch'] + 1})")

    encoded = bertsim.encode_pairs(train_pairs.queries, train_pairs.texts)
    labels = torch.from_numpy(train_pairs.labels)
    training_info = {
        "config": {"model": label} | asdict(config),
        "pair_format": asdict(fmt),
        "data": {
            "train": train_pairs.describe(),
            "dev": dev_pairs.describe() if dev_pairs is not None else None,
        },
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "warmup_steps": warmup,
        "max_length": bertsim.max_length,
        "max_length_rule": (
            "set" if config.max_length is not None
            else f"{MAX_LENGTH_QUANTILE:.0%} of training pairs whole, rounded up to 8"
        ),
        "new_vocab_rows_from": new_rows_from,
        "negatives": negatives.stats,
        "first_stage": first_stage.describe() if first_stage is not None else None,
        "loss": "MSE on the 0-2 score scale",
    }
    label_scale = {"min": fmt.label_min, "max": fmt.label_max, "mapped_to": [0.0, 2.0]}
    session_start = time.perf_counter()

    def elapsed() -> float:
        return state["wall_seconds"] + time.perf_counter() - session_start

    def evaluate_and_keep(record: dict) -> None:
        """Score dev, keep the model if it is the best so far, count evaluations since."""
        if dev_pairs is not None:
            scores = score_pairs(
                bertsim, dev_pairs.queries, dev_pairs.texts,
                batch_size=config.eval_batch_size, checked=True,
            )
            record.update(evaluate_scores(dev_pairs.queries, scores, dev_pairs.labels))
            bertsim.train()
        state["history"].append(record)
        _say(config, _format_record(record))
        improved = (
            dev_pairs is None
            or state["best_epoch"] == 0  # nothing saved yet (e.g. a NaN metric): keep this one
            or is_better(config.select_metric, record[config.select_metric], state["best_value"])
        )
        if not improved:
            state["evals_since_best"] += 1
            state["stopped_early"] = bool(config.patience) and (
                state["evals_since_best"] >= config.patience
            )
            return
        state.update(
            best_value=record.get(config.select_metric), best_epoch=record["epoch"],
            best_step=record["step"], best_metrics=record, evals_since_best=0,
        )
        bertsim.save(out_dir, {
            "label_scale": label_scale,
            "training": training_info | {"history": state["history"],
                                         "best_epoch": record["epoch"],
                                         "best_step": record["step"],
                                         "select_metric": config.select_metric,
                                         "finished": False},
        })

    from tqdm.auto import tqdm

    for epoch in range(state["epoch"], config.epochs):
        if state["stopped_early"]:
            break
        order = np.random.default_rng([config.seed, epoch]).permutation(len(train_pairs))
        first = state["step_in_epoch"] if epoch == state["epoch"] else 0
        bertsim.train()
        bar = tqdm(
            total=steps_per_epoch, initial=first, disable=not config.progress,
            desc=f"epoch {epoch + 1}/{config.epochs}", unit="step",
        )
        for b in range(first, steps_per_epoch):
            rows = order[b * config.batch_size : (b + 1) * config.batch_size]
            step = state["global_step"] + 1
            set_lr(optimizer, lr_multiplier(step, total_steps, warmup))
            batch = bertsim.collate(encoded, rows)
            with autocast(config.precision):
                pred = bertsim(**batch)
            loss = torch.nn.functional.mse_loss(pred.float(), labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(bertsim.parameters(), config.max_grad_norm)
            optimizer.step()
            loss_value = float(loss.detach())
            state["global_step"] = step
            state["step_in_epoch"] = b + 1
            state["epoch"] = epoch
            state["epoch_loss_sum"] += loss_value
            bar.update(1)
            bar.set_postfix(loss=f"{state['epoch_loss_sum'] / (b + 1):.4f}")
            if on_step is not None:
                on_step(StepInfo(step, epoch, loss_value, _learning_rates(optimizer)))
            mid_epoch = b + 1 < steps_per_epoch
            if config.eval_every and step % config.eval_every == 0 and mid_epoch:
                evaluate_and_keep({"epoch": epoch + 1, "step": step,
                                   "train_loss": state["epoch_loss_sum"] / (b + 1)})
                if state["stopped_early"]:
                    break
            if config.checkpoint_every and step % config.checkpoint_every == 0 and mid_epoch:
                save_checkpoint(out_dir, bertsim, optimizer, state | {"wall_seconds": elapsed()})
        bar.close()
        if not state["stopped_early"]:
            evaluate_and_keep({"epoch": epoch + 1, "step": state["global_step"],
                               "train_loss": state["epoch_loss_sum"] / steps_per_epoch})
        state.update(epoch=epoch + 1, step_in_epoch=0, epoch_loss_sum=0.0)
        save_checkpoint(out_dir, bertsim, optimizer, state | {"wall_seconds": elapsed()})
        if state["stopped_early"]:
            _say(config, f"early stop: {config.patience} dev evaluations without improvement")

    wall = elapsed()
    fusion = None
    if first_stage is not None and dev_pairs is not None:
        best = BertSim.load(out_dir, backend=torch_backend(config.precision))
        fusion = fusion_on_dev(
            score_pairs(best, dev_pairs.queries, dev_pairs.texts,
                        batch_size=config.eval_batch_size, checked=True),
            dev_pairs, first_stage,
        )
    _finish_manifest(out_dir, state, wall, fusion)
    if not config.keep_checkpoint:
        remove_checkpoints(out_dir)
    return TrainResult(
        out=str(out_dir),
        model=label,
        seconds=wall,
        best_epoch=state["best_epoch"],
        best_step=state["best_step"],
        best_metrics=state["best_metrics"],
        history=state["history"],
        resumed_from_step=resumed_from,
    )


def fit_max_length(model: BertSim, pairs: LabelledPairs) -> int:
    """Token budget that keeps ``MAX_LENGTH_QUANTILE`` of ``pairs`` whole, rounded up to a
    multiple of 8, at most what the encoder reads (``model.max_length`` on entry)."""
    lengths = model.encode_pairs(pairs.queries, pairs.texts).lengths()
    wanted = int(np.ceil(np.quantile(lengths, MAX_LENGTH_QUANTILE) / 8) * 8)
    return max(8, min(model.max_length, wanted))


def _learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Each group's current rate by name, plus the added vocabulary rows' own rate."""
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    for group in optimizer.param_groups:
        if group.get("rows_from") is not None:
            lrs["new_vocab_rows"] = group["lr"] * group["row_lr_factor"]
    return lrs


def _as_pairs(data: str | Path | LabelledPairs, fmt: PairFormat, role: str) -> LabelledPairs:
    if isinstance(data, LabelledPairs):
        if not len(data):
            raise ValueError(f"{role} pairs are empty; give labelled pairs")
        return data
    if isinstance(data, (str, Path)):
        return read_pairs(data, fmt, role=role)
    raise TypeError(f"{role} must be a table path or LabelledPairs, got {type(data).__name__}")


def _fingerprint(
    config: TrainConfig, model: str, fmt: PairFormat, train: LabelledPairs,
    dev: LabelledPairs | None,
) -> dict:
    """What must match for a checkpoint to be resumed: the start model (its recorded label),
    results-affecting settings and data."""
    ignored = {"progress", "overwrite", "keep_checkpoint", "checkpoint_every", "eval_batch_size"}
    settings = {"model": model} | {k: v for k, v in asdict(config).items() if k not in ignored}
    return {
        "settings": settings,
        "pair_format": asdict(fmt),
        "train": _content_sha256(train),
        "dev": _content_sha256(dev) if dev is not None else None,
    }


def _content_sha256(pairs: LabelledPairs) -> str:
    digest = hashlib.sha256()
    for q, t in zip(pairs.queries, pairs.texts):
        digest.update(q.encode())
        digest.update(b"\x00")
        digest.update(t.encode())
        digest.update(b"\x01")
    digest.update(np.ascontiguousarray(pairs.labels, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _finish_manifest(out_dir: Path, state: dict, wall: float, fusion: dict | None) -> None:
    path = out_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if fusion is not None:
        manifest["fusion"] = fusion
    training = manifest.setdefault("training", {})
    training.update(
        history=state["history"], best_epoch=state["best_epoch"], finished=True,
        best_step=state["best_step"], stopped_early=state["stopped_early"],
        wall_seconds=round(wall, 3), steps=state["global_step"],
    )
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _say(config: TrainConfig, message: str) -> None:
    if config.progress:
        from tqdm.auto import tqdm

        tqdm.write(message)


def _format_record(record: dict) -> str:
    parts = [f"epoch {record['epoch']}: train_loss {record['train_loss']:.4f}"]
    for key in ("spearman", "mse", "ndcg@10"):
        if key in record:
            parts.append(f"dev {key} {record[key]:.4f}")
    return ", ".join(parts)
