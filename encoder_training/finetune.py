"""Fine-tune the bi-encoder on labelled (query, ad) pairs with sentence-transformers.

Two losses (``loss=``):

* ``"mnrl"``: MultipleNegativesRankingLoss over (query, relevant ad) rows, each row carrying
  ``hard_negatives`` negatives mined from a built index (:mod:`encoder_training.hard_negatives`:
  never an ad labelled relevant for that query nor a duplicate of one). A query with several
  relevant ads gets that many times more mined negatives (up to ``mining_candidates``),
  rotated over its rows, so its rows do not all repeat the same negative. Without an index, or
  when a query has too few mined negatives, the gap is filled with random texts of the training
  pairs that are not relevant to the query (counted in the summary). Batches hold no duplicate
  texts (sentence-transformers' NO_DUPLICATES sampler), so a query never meets its own
  positive as an in-batch negative.
* ``"cosent"``: CoSENT on every (query, ad, graded label) pair: only the labels' order matters.

The dev split (a file, or a share of the queries held out) is evaluated before training and
after every epoch: information-retrieval nDCG@10 (and recall@k) of the dev queries over the dev
texts for MNRL, Spearman of cosine against the labels for CoSENT. The best epoch
is kept and saved at ``out`` as a normal sentence-transformers folder that
:class:`retrieval.encoder.Encoder` loads, with ``adrecall_training.json`` beside the weights
recording settings, data and every dev figure, and an adrecall ``encoder`` manifest (every
file's checksum, checked at load) written last. ``out`` is checked before any work: it may
replace only an ``encoder`` folder (with ``overwrite``). Texts get adrecall's normalisation,
as at search time. ``max_length`` applies to training only; the saved model keeps the
base model's limit.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adrecall.adaptation_history import copy_history
from adrecall.folders import ENCODER, check_out, mark_unfinished, prepare_out, write_manifest
from adrecall.model_loading import load_sentence_transformer
from adrecall.models import model_label, resolve_model_dir
from adrecall.run_summary import RunSummary
from adrecall.settings_checks import (
    check_at_least,
    check_fraction,
    check_ints,
    check_positive,
)
from adrecall.textnorm import model_text
from adrecall.training_config import TrainingConfig
from encoder_training.pairs import (
    PairColumns,
    Pairs,
    PairsError,
    read_pairs,
    split_by_query,
)
from encoder_training.training_rows import cosent_rows, mnrl_rows

LOSSES = ("mnrl", "cosent")
TRAINING_FILE = "adrecall_training.json"


@dataclass(frozen=True)
class TrainEncoderConfig(TrainingConfig):
    """Training settings; every field is checked when the config is made. ``overwrite``
    replaces an ``encoder`` folder already at ``out``."""

    loss: str = "mnrl"
    lr: float = 2e-5
    max_length: int = 64
    relevance_threshold: float = 1.0
    hard_negatives: int = 1
    mining_candidates: int = 30
    dev_fraction: float = 0.1
    max_train_rows: int | None = None
    max_steps: int | None = None
    normalize_text: bool = True

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        super().__post_init__()
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (in-batch negatives), got {self.batch_size}")
        check_ints(self, "mining_candidates")
        check_ints(self, "max_length", minimum=8)
        check_ints(self, "hard_negatives", minimum=0)
        check_ints(self, "max_train_rows", "max_steps", optional=True)
        check_positive(self, "lr")
        check_at_least(self, "mining_candidates", "hard_negatives")
        check_fraction("dev_fraction", self.dev_fraction, allow_zero=False)


@dataclass(frozen=True)
class TrainEncoderSummary(RunSummary):
    """What a training run did and how the dev figures moved (``seconds``: the training,
    dev evaluations included)."""

    loss: str
    train_rows: int
    train_pairs: dict[str, object]
    dev_pairs: dict[str, object]
    primary_metric: str
    dev_before: dict[str, float]
    dev_history: list[dict[str, float]]
    best: dict[str, float]
    steps: int
    rows_per_second: float
    hard_negatives: dict[str, int] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)

    @property
    def improvement(self) -> float:
        """Best dev primary metric minus the base model's."""
        return float(self.best[self.primary_metric] - self.dev_before[self.primary_metric])


def train_encoder(
    train: Pairs | str | Path, out: str | Path, *, model: str | Path | None = None,
    dev: Pairs | str | Path | None = None, config: TrainEncoderConfig | None = None,
    index: str | Path | None = None, columns: PairColumns | None = None,
) -> TrainEncoderSummary:
    """Fine-tune ``model`` on the ``train`` pairs and save the best dev epoch at ``out``.

    ``model`` is ``"default"`` (also ``None``) or a local Hugging Face / sentence-transformers
    folder. ``train``/``dev`` are pairs tables or :class:`Pairs`; ``dev`` defaults to
    ``config.dev_fraction`` of the queries held out of ``train``. ``index`` is an index
    directory (``adrecall build``) to mine MNRL hard negatives from; ``columns`` names the
    tables' columns.
    """
    config = config or TrainEncoderConfig()
    out = Path(out)
    model_dir = resolve_model_dir(model)
    inputs = [model_dir] + ([Path(index)] if index is not None else [])
    check_out(out, ENCODER, overwrite=config.overwrite, inputs=inputs)
    if not isinstance(train, Pairs):
        train = read_pairs(train, columns, role="train")
    if dev is None:
        train, dev = split_by_query(train, config.dev_fraction, config.seed)
    elif not isinstance(dev, Pairs):
        dev = read_pairs(dev, columns, role="dev")
    if index is not None and config.loss != "mnrl":
        raise ValueError("--index mines hard negatives for --loss mnrl only; drop it for cosent")
    if index is not None and not Path(index).is_dir():
        raise FileNotFoundError(f"index directory {str(index)!r} does not exist; build it first "
                                "with `adrecall build` or leave --index out")

    if config.normalize_text:  # as the encoder does at search time (and idempotent)
        train, dev = train.normalized(), dev.normalized()
    evaluator = _dev_evaluator(dev, config)  # refuses an unusable dev split before any heavy work

    mined_stats: dict[str, int] = {}
    negatives: dict[str, list[str]] = {}
    if config.loss == "mnrl" and config.hard_negatives and index is not None:
        negatives, mined_stats = _mine(index, train, config)
        if config.normalize_text:
            negatives = {q: [model_text(t) for t in v] for q, v in negatives.items()}

    if config.loss == "mnrl":
        rows, fill_stats = mnrl_rows(train, negatives, config.hard_negatives, config.relevance_threshold, config.seed)
        mined_stats.update(fill_stats)
    else:
        rows = cosent_rows(train)
    if config.max_train_rows is not None and len(rows["anchor" if "anchor" in rows else "sentence1"]) > config.max_train_rows:
        rng = np.random.default_rng(config.seed)
        n = len(next(iter(rows.values())))
        keep = np.sort(rng.choice(n, size=config.max_train_rows, replace=False))
        rows = {k: [v[i] for i in keep] for k, v in rows.items()}
    n_rows = len(next(iter(rows.values())))
    if n_rows < 2:
        raise PairsError(
            f"{train.source}: only {n_rows} training row(s) for loss {config.loss} (MNRL needs "
            f"pairs with label >= {config.relevance_threshold:g}); give more labelled pairs"
        )

    st_model = load_sentence_transformer(model_dir)
    base_max_length = st_model.max_seq_length
    st_model.max_seq_length = config.max_length
    started = time.perf_counter()
    dev_before = _flat(evaluator(st_model))
    primary_key = _primary_key(evaluator)
    trainer, checkpoints = _trainer(st_model, rows, evaluator, primary_key, config, out)
    result = trainer.train()
    seconds = time.perf_counter() - started
    history = [
        {
            k.removeprefix("eval_"): float(v)
            for k, v in entry.items()
            if k in ("epoch", "step") or (k.startswith("eval_dev_") and isinstance(v, (int, float)))
        }
        for entry in trainer.state.log_history
        if f"eval_{primary_key}" in entry
    ]
    best = max(history, key=lambda h: h[primary_key]) if history else {}
    st_model.max_seq_length = base_max_length
    prepare_out(out, ENCODER, overwrite=config.overwrite, inputs=inputs)
    mark_unfinished(out, ENCODER)
    st_model.save(str(out))
    copy_history(model_dir, out)  # BertSim from this encoder still knows the added vocabulary
    if not config.keep_checkpoint:
        shutil.rmtree(checkpoints, ignore_errors=True)
    summary = TrainEncoderSummary(
        out=str(out),
        model=model_label(model),
        seconds=round(seconds, 1),
        loss=config.loss,
        train_rows=n_rows,
        train_pairs=train.describe(config.relevance_threshold),
        dev_pairs=dev.describe(config.relevance_threshold),
        primary_metric=primary_key,
        dev_before=dev_before,
        dev_history=history,
        best=best or dev_before,
        steps=int(result.global_step),
        rows_per_second=round(n_rows * config.epochs / seconds, 1) if config.max_steps is None and seconds else 0.0,
        hard_negatives=mined_stats,
        config={**asdict(config), "index": str(index) if index else None,
                "saved_max_length": base_max_length},
    )
    (out / TRAINING_FILE).write_text(
        json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_manifest(out, ENCODER, {"base_model": summary.model, "loss": config.loss})
    return summary


# ---------------------------------------------------------------- pieces


def _mine(
    index: str | Path, train: Pairs, config: TrainEncoderConfig
) -> tuple[dict[str, list[str]], dict[str, int]]:
    from adrecall.hard_negatives import mine_hard_negatives
    from retrieval.retriever import Retriever

    # A query with r relevant pairs makes r rows: mine enough for each row to get its own
    # negatives (rotated by mnrl_rows), but never deeper than the candidate list.
    rows_per_query = Counter(q for q, y in zip(train.queries, train.labels) if y >= config.relevance_threshold)
    wanted = config.hard_negatives * max(rows_per_query.values(), default=1)
    retriever = Retriever.load(index)
    mined = mine_hard_negatives(
        retriever,
        train,
        n_negatives=max(1, min(config.mining_candidates, wanted)),
        candidates=config.mining_candidates,
        relevance_threshold=config.relevance_threshold,
        progress=config.progress,
    )
    return mined.negatives, dict(mined.stats)


def _dev_evaluator(dev: Pairs, config: TrainEncoderConfig) -> Any:
    """The dev evaluator matching the loss: retrieval over the dev texts for MNRL (nDCG@10
    primary, recall@1/10/100 too), Spearman of cosine against the labels for CoSENT."""
    from sentence_transformers.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator,
        InformationRetrievalEvaluator,
    )

    if config.loss == "mnrl":
        relevant = dev.relevant_texts(config.relevance_threshold)
        if not relevant:
            raise PairsError(
                f"dev pairs {dev.source} hold no pair with label >= {config.relevance_threshold:g}, "
                "so retrieval cannot be evaluated; give a dev split with relevant pairs"
            )
        corpus_ids: dict[str, str] = {}
        for text in dev.texts:
            corpus_ids.setdefault(text, f"d{len(corpus_ids)}")
        query_ids = {q: f"q{i}" for i, q in enumerate(relevant)}
        evaluator = InformationRetrievalEvaluator(
            queries={qid: q for q, qid in query_ids.items()},
            corpus={cid: t for t, cid in corpus_ids.items()},
            relevant_docs={query_ids[q]: {corpus_ids[t] for t in ts} for q, ts in relevant.items()},
            name="dev",
            batch_size=config.eval_batch_size,
            precision_recall_at_k=[1, 10, 100],
            accuracy_at_k=[1, 10],
            write_csv=False,
        )
        return evaluator
    if len(set(dev.labels.tolist())) < 2:
        raise PairsError(
            f"dev pairs {dev.source} all carry the same label, so Spearman is undefined; give a "
            "dev split with graded labels"
        )
    return EmbeddingSimilarityEvaluator(
        dev.queries, dev.texts, dev.labels.tolist(), name="dev",
        batch_size=config.eval_batch_size, write_csv=False,
    )


def _primary_key(evaluator: Any) -> str:
    key = getattr(evaluator, "primary_metric", None)
    if not key:
        raise RuntimeError("the dev evaluator reported no primary metric")  # pragma: no cover
    return str(key)


def _flat(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating))}


def _trainer(
    model: Any,
    rows: dict[str, list[Any]],
    evaluator: Any,
    primary_key: str,
    config: TrainEncoderConfig,
    out: Path,
) -> tuple[Any, Path]:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        CoSENTLoss,
        MultipleNegativesRankingLoss,
    )

    checkpoints = out.parent / f"{out.name}.checkpoints"
    if checkpoints.exists():
        shutil.rmtree(checkpoints)
    by_steps = config.max_steps is not None
    steps = config.max_steps or 0
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=steps if by_steps else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        learning_rate=config.lr,
        warmup_steps=config.warmup_ratio,
        bf16=config.precision == "bf16",
        use_cpu=True,
        seed=config.seed,
        data_seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES if config.loss == "mnrl" else BatchSamplers.BATCH_SAMPLER,
        eval_strategy="steps" if by_steps else "epoch",
        save_strategy="steps" if by_steps else "epoch",
        eval_steps=steps if by_steps else None,
        save_steps=steps if by_steps else 500,  # 500: the library default, unused per epoch
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=primary_key,
        greater_is_better=True,
        logging_steps=max(1, min(50, config.max_steps or 50)),
        report_to="none",
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        save_only_model=True,
    )
    loss = MultipleNegativesRankingLoss(model) if config.loss == "mnrl" else CoSENTLoss(model)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        loss=loss,
        evaluator=evaluator,
    )
    return trainer, checkpoints
