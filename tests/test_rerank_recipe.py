"""The BertSim recipe's parts: learning-rate groups (head ×10, added vocabulary rows their own
rate), mean pooling, a token budget taken from the data, dev evaluation by step and early stop."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_WORDS

from adrecall.adaptation_history import HISTORY_FILE, added_vocab_start
from rerank import BertSim, TrainConfig, build_optimizer, pairs_from_lists, train_reranker
from rerank.training import fit_max_length


def toy_pairs(n: int = 24, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    queries, texts, labels = [], [], []
    for _ in range(n):
        a, b = rng.choice(TINY_WORDS, 2, replace=False)
        same = bool(rng.integers(2))
        queries.append(f"{a} {b}")
        texts.append(f"{a} {b} sale" if same else f"{rng.choice(TINY_WORDS)} new")
        labels.append(2.0 if same else 0.0)
    return pairs_from_lists(queries, texts, labels)


def quick(**overrides) -> TrainConfig:  # type: ignore[no-untyped-def]
    settings = {"epochs": 2, "batch_size": 4, "max_length": 16,
                "encoder_lr": 1e-3, "seed": 3, "progress": False, "checkpoint_every": 0}
    return TrainConfig(**(settings | overrides))


def test_optimizer_holds_head_and_new_vocabulary_rates(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16)
    config = TrainConfig(encoder_lr=2e-5, new_vocab_lr_factor=25.0)
    optimizer = build_optimizer(model, config, new_rows_from=30)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["head"]["lr"] == pytest.approx(10 * groups["encoder"]["lr"])
    embeddings = model.encoder.get_input_embeddings().weight
    rows = groups["word_embeddings"]
    assert rows["params"] == [embeddings]
    assert (rows["rows_from"], rows["row_lr_factor"]) == (30, 25.0)
    assert not any(p is embeddings for g in optimizer.param_groups if g is not rows
                   for p in g["params"])
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    # Without added rows the embeddings stay in the encoder's groups.
    plain = {g["name"] for g in build_optimizer(model, config).param_groups}
    assert "word_embeddings" not in plain


def test_added_rows_move_factor_times_as_far_as_at_the_encoder_rate(tiny_model_dir: Path) -> None:
    """One step with factor 7 against the same step with factor 1: old rows move the same,
    added rows exactly 7 times as far (AdamW's step is linear in the rate)."""
    torch.manual_seed(0)
    base = BertSim.from_encoder(tiny_model_dir, max_length=16)
    base.eval()  # no dropout: both copies see the same gradient
    pairs = toy_pairs(8)
    moves = []
    for factor in (1.0, 7.0):
        model = copy.deepcopy(base)
        config = TrainConfig(encoder_lr=1e-3, new_vocab_lr_factor=factor)
        optimizer = build_optimizer(model, config, new_rows_from=20)
        weight = model.encoder.get_input_embeddings().weight
        before = weight.detach().clone()
        batch = model.collate(model.encode_pairs(pairs.queries, pairs.texts), list(range(8)))
        loss = torch.nn.functional.mse_loss(model(**batch), torch.from_numpy(pairs.labels))
        loss.backward()
        optimizer.step()
        moves.append(weight.detach() - before)
    assert torch.allclose(moves[1][:20], moves[0][:20])
    moved = moves[0][20:].abs().sum(1) > 0
    assert moved.any()  # the batch's words include added rows
    assert torch.allclose(moves[1][20:], 7.0 * moves[0][20:], atol=1e-7)


def test_added_vocab_start_reads_the_extension_record(tmp_path: Path) -> None:
    assert added_vocab_start(tmp_path) is None
    (tmp_path / HISTORY_FILE).write_text(json.dumps({"steps": [
        {"step": "extend-vocab", "old_vocab_size": 30522, "new_vocab_size": 36000},
        {"step": "pretrain"},
    ]}))
    assert added_vocab_start(tmp_path) == 30522


def test_mean_pooling_ignores_padding(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, pooling="mean", max_length=32)
    model.eval()
    pairs = model.encode_pairs(["red shoes", "cheap loan for a new car fast"],
                               ["red shoes sale", "car loan"])
    with torch.no_grad():
        together = model(**model.collate(pairs, [0, 1]))
        alone = model(**model.collate(pairs, [0]))
    assert together[0].item() == pytest.approx(alone[0].item(), abs=1e-5)
    with torch.no_grad():
        cls = BertSim.from_encoder(tiny_model_dir, pooling="cls", max_length=32)
        cls.head.load_state_dict(model.head.state_dict())
        cls.eval()
        assert cls(**model.collate(pairs, [0]))[0].item() != pytest.approx(alone[0].item())


def test_max_length_from_data_covers_the_pairs(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=None)
    assert model.max_length == 64  # the tiny encoder's position limit
    pairs = toy_pairs(50)
    longest = int(model.encode_pairs(pairs.queries, pairs.texts).lengths().max())
    fitted = fit_max_length(model, pairs)
    assert fitted % 8 == 0 and longest <= fitted < longest + 8


def test_default_training_records_the_fitted_max_length(tiny_model_dir: Path, tmp_path: Path) -> None:
    pairs = toy_pairs()
    expected = fit_max_length(BertSim.from_encoder(tiny_model_dir, max_length=None), pairs)
    assert expected < 64
    result = train_reranker(pairs, tmp_path / "out", model=tiny_model_dir,
                            config=quick(max_length=None, epochs=1))
    manifest = json.loads((Path(result.out) / "manifest.json").read_text())
    assert manifest["max_length"] == manifest["training"]["max_length"] == expected
    assert BertSim.load(result.out).max_length == expected


def test_early_stop_after_patience_evaluations_without_improvement(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dev Spearman that only falls: the first evaluation is kept, training stops after two
    more, and the saved model is the one from the first evaluation's step."""
    falling = iter(np.linspace(0.9, 0.1, 50))

    def fake_scores(queries, scores, labels):  # type: ignore[no-untyped-def]
        value = float(next(falling))
        return {"spearman": value, "pearson": value, "mse": 1.0, "ndcg@10": value}

    monkeypatch.setattr("rerank.training.evaluate_scores", fake_scores)
    steps: list[int] = []
    result = train_reranker(
        toy_pairs(), tmp_path / "out", model=tiny_model_dir, dev=toy_pairs(8, seed=1),
        config=quick(epochs=4, eval_every=2, patience=2),
        on_step=lambda info: steps.append(info.global_step),
    )
    assert [r["step"] for r in result.history] == [2, 4, 6]
    assert steps[-1] == 6  # 4 epochs × 6 steps planned, stopped at step 6
    assert (result.best_epoch, result.best_step) == (1, 2)
    manifest = json.loads((Path(result.out) / "manifest.json").read_text())
    assert manifest["training"]["stopped_early"] is True
    assert manifest["training"]["best_step"] == 2


def test_copy_history_carries_the_added_vocabulary_to_a_trained_encoder(tmp_path: Path) -> None:
    """extend-vocab → train-encoder → train-reranker: the encoder folder keeps the record, so
    BertSim still gives the added rows their own rate."""
    from adrecall.adaptation_history import copy_history, write_history

    extended, encoder = tmp_path / "extended", tmp_path / "encoder"
    extended.mkdir(), encoder.mkdir()
    write_history(extended, tmp_path / "none",
                  {"step": "extend-vocab", "old_vocab_size": 100, "new_vocab_size": 150})
    copy_history(extended, encoder)
    assert added_vocab_start(encoder) == 100
    copy_history(tmp_path / "none", tmp_path / "other")  # no record: nothing to carry
    assert not (tmp_path / "other").exists()
