"""Domain-adaptive pre-training: masked language modelling with whole word masking.

The encoder of a model directory is wrapped in its family's masked-LM model (for BERT,
``BertForMaskedLM``; the prediction head comes from ``mlm_head.safetensors`` or the checkpoint
when it has one, else it starts fresh) and trained on the corpus with dynamic whole word
masks (:mod:`domain_adapt.whole_word_masking`), AdamW and a linear warm-up/decay schedule.
A held-out slice of the corpus (never trained on) gives the masked-LM perplexity before and
after, with the same masks both times. While running, ``OUT/checkpoint`` holds a resume
point; running the same call again after a kill continues from it (the batch order and the
masks are functions of (seed, epoch) and (seed, step)). At the end the encoder is written back
in the input's shape (sentence-transformers stays sentence-transformers; the pooler, when the
input had one, is kept unchanged) with the MLM head beside it in ``mlm_head.safetensors``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from adrecall.model_loading import encoder_dir, load_tokenizer, quiet_transformers
from adrecall.models import model_label
from adrecall.precision import autocast
from adrecall.resume_checkpoint import remove_checkpoints
from adrecall.run_summary import RunSummary
from adrecall.wobert import wobert_active
from domain_adapt.config import PretrainConfig


@dataclass(frozen=True)
class PretrainSummary(RunSummary):
    """Outcome of :func:`pretrain`; ``to_dict()`` is recorded in ``domain_adapt.json``."""

    train_texts: int
    heldout_texts: int
    steps: int
    epochs: float
    tokens_seen: int
    tokens_per_second: float
    heldout_loss_before: float | None
    heldout_loss_after: float | None
    heldout_perplexity_before: float | None
    heldout_perplexity_after: float | None
    train_loss_first: float
    train_loss_last: float
    resumed_from_step: int | None
    mlm_head: str
    loss_curve: list[list[float]] = field(default_factory=list)
    config: dict = field(default_factory=dict)


def build_mlm_model(model_dir: Path, seed: int = 0) -> tuple[Any, Any, str]:
    """``(mlm_model, base_model, head_source)`` for the encoder of ``model_dir``.

    ``base_model`` is the bare encoder as loaded (pooler included when the checkpoint has one);
    ``mlm_model`` shares nothing with it. ``head_source`` says where the prediction head came
    from: ``"mlm_head.safetensors"``, ``"checkpoint"`` or ``"new"``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM

    from domain_adapt import model_io

    enc_dir = encoder_dir(model_dir)
    base = model_io.load_base_model(enc_dir)
    torch.manual_seed(seed)
    with quiet_transformers():
        try:
            mlm = AutoModelForMaskedLM.from_config(base.config)
        except ValueError as exc:
            raise ValueError(
                f"{enc_dir}: {type(base.config).__name__} has no masked-LM model in transformers; "
                "pre-training needs a BERT-family encoder"
            ) from exc
    prefix = mlm.base_model_prefix
    body = getattr(mlm, prefix)
    result = body.load_state_dict(base.state_dict(), strict=False)
    missing = [k for k in result.missing_keys if "position_ids" not in k]
    if missing:
        raise ValueError(f"{enc_dir}: the masked-LM body lacks weights for {missing[:5]}")
    head_state: dict[str, torch.Tensor] = {}
    head_source = "new"
    head_file = enc_dir / model_io.MLM_HEAD_FILE
    if head_file.is_file():
        head_state = load_file(str(head_file))
        head_source = model_io.MLM_HEAD_FILE
    else:
        heads = {name for name, _ in mlm.named_children()} - {prefix}  # e.g. {"cls"}
        for file in sorted(enc_dir.glob("*.safetensors")):
            with safe_open(str(file), "pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                    if key.split(".", 1)[0] in heads:
                        head_state[key] = handle.get_tensor(key)
        if head_state:
            head_source = "checkpoint"
    if head_state:
        own = mlm.state_dict()
        usable = {k: v for k, v in head_state.items() if k in own and own[k].shape == v.shape}
        mlm.load_state_dict(usable, strict=False)
        if not usable:
            head_source = "new"
    mlm.tie_weights()
    return mlm, base, head_source


def mlm_head_state(mlm: Any) -> dict[str, torch.Tensor]:
    """The masked-LM head's own tensors (body and tied decoder weights left out)."""
    prefix = mlm.base_model_prefix + "."
    tied = mlm.get_input_embeddings().weight.data_ptr()
    return {
        k: v.detach().contiguous().clone()
        for k, v in mlm.state_dict().items()
        if not k.startswith(prefix) and v.data_ptr() != tied
    }


def masked_lm_loss(mlm: Any, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy at the masked positions only.

    The prediction head runs on the masked tokens alone (about 15% of them) instead of every
    position, which saves most of the head's cost with a large vocabulary. Models whose head is
    not a single child module fall back to the model's own full forward pass.
    """
    labels = batch["labels"]
    prefix = mlm.base_model_prefix
    heads = [module for name, module in mlm.named_children() if name != prefix]
    if len(heads) != 1:
        logits = mlm(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return torch.nn.functional.cross_entropy(
            logits.float().view(-1, logits.shape[-1]), labels.view(-1),
            ignore_index=-100, reduction=reduction,
        )
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = getattr(mlm, prefix)(**inputs).last_hidden_state
    chosen = labels != -100
    logits = heads[0](hidden[chosen])
    return torch.nn.functional.cross_entropy(logits.float(), labels[chosen], reduction=reduction)


def heldout_loss(
    mlm: Any, examples: Sequence[dict], collator: Any, batch_size: int, seed: int, precision: str
) -> float | None:
    """Mean masked-LM loss per masked token on ``examples`` with fixed masks (``seed``)."""
    if not examples:
        return None
    was_training = mlm.training
    mlm.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i, start in enumerate(range(0, len(examples), batch_size)):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + 7 + i)
            batch = collator(list(examples[start : start + batch_size]), generator)
            with autocast(precision):
                loss = masked_lm_loss(mlm, batch, reduction="sum")
            total += float(loss)
            count += int((batch["labels"] != -100).sum())
    mlm.train(was_training)
    return total / max(count, 1)


def pretrain(
    texts: Sequence[str], out: str | Path, *, model: str | Path | None = "default",
    config: PretrainConfig | None = None,
) -> PretrainSummary:
    """Continue masked-LM pre-training of ``model``'s encoder on the corpus ``texts`` (less
    the held-out slice, taken from it); save it to ``out``. Arguments as for every step
    (:mod:`domain_adapt`)."""
    from domain_adapt import model_io
    from domain_adapt.training_utils import start_run, train_steps
    from domain_adapt.whole_word_masking import WholeWordMaskCollator, encode_for_mlm

    config = config or PretrainConfig()
    run = start_run(texts, model, out, config)
    tokenizer = load_tokenizer(run.source)
    mlm, base, head_source = build_mlm_model(run.source, seed=config.seed)
    collator = WholeWordMaskCollator(tokenizer, mlm_probability=config.mlm_probability)
    train_examples = encode_for_mlm(tokenizer, run.train_texts, config.max_length)
    held_examples = encode_for_mlm(tokenizer, run.held_texts, config.max_length)

    def held_out() -> float | None:
        return heldout_loss(
            mlm, held_examples, collator, config.eval_batch_size, config.seed, config.precision
        )

    def batch_loss(rows: Any, step: int) -> tuple[torch.Tensor, int]:
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        batch = collator([train_examples[r] for r in rows], generator)
        with autocast(config.precision):
            loss = masked_lm_loss(mlm, batch)
        return loss, int(batch["attention_mask"].sum())

    done = train_steps(run, mlm, config, rows=len(train_examples), desc="pretrain", digits=5,
                       heldout=held_out, batch_loss=batch_loss, bar=("loss", ".3f", "tok_s"))
    loss_before, loss_after = done.heldout_before, held_out()
    body = getattr(mlm, mlm.base_model_prefix)
    base.load_state_dict(body.state_dict(), strict=False)
    model_io.begin_output(run.out_dir, run.source, overwrite=True)  # only this run's own files
    out_enc = model_io.copy_model_tree(run.source, run.out_dir)
    model_io.save_encoder(base, tokenizer, out_enc)
    from safetensors.torch import save_file

    save_file(mlm_head_state(mlm), str(out_enc / model_io.MLM_HEAD_FILE))
    if not config.keep_checkpoint:
        remove_checkpoints(run.out_dir)
    first, last = done.log.first_and_last()
    summary = PretrainSummary(
        out=str(run.out_dir),
        model=model_label(model),
        seconds=round(done.wall_before + time.perf_counter() - run.started, 2),
        train_texts=len(run.train_texts),
        heldout_texts=len(run.held_texts),
        steps=done.steps,
        epochs=round(done.steps / done.steps_per_epoch, 3),
        tokens_seen=done.units_seen,
        tokens_per_second=round(done.run_units / max(done.train_seconds, 1e-9), 1),
        heldout_loss_before=_round(loss_before),
        heldout_loss_after=_round(loss_after),
        heldout_perplexity_before=_round(math.exp(loss_before)) if loss_before is not None else None,
        heldout_perplexity_after=_round(math.exp(loss_after)) if loss_after is not None else None,
        train_loss_first=round(first, 5),
        train_loss_last=round(last, 5),
        resumed_from_step=done.resumed_from,
        mlm_head=head_source,
        loss_curve=done.log.curve,
        config={**asdict(config), "wobert": wobert_active(tokenizer)},
    )
    model_io.finish_output(run.out_dir, run.source, {"step": "pretrain", **summary.to_dict()})
    return summary


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 5)
