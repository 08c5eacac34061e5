"""BertSim on a tiny random BERT: training, optimizer groups, save/load, resume, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_WORDS as WORDS  # the tiny BERT's vocabulary

from adrecall.folders import FolderError
from adrecall.resume_checkpoint import optimizer_from_safe, optimizer_to_safe
from rerank import (
    RANK_KEYS,
    BertSim,
    PairFormat,
    PairsError,
    TrainConfig,
    build_optimizer,
    pairs_from_lists,
    read_pairs,
    train_reranker,
)

PRODUCTS = ["shoes", "car", "phone", "insurance", "loan", "hotel", "pizza", "shirt", "bike"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run far faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)




def toy_frame(n_queries: int = 6, seed: int = 0) -> pd.DataFrame:
    """Query "cheap X"; ads "X sale" (2), "blue X" (1) or another product (0): learnable."""
    rng = np.random.default_rng(seed)
    rows = []
    for product in rng.permutation(PRODUCTS)[:n_queries]:
        other = rng.choice([p for p in PRODUCTS if p != product])
        rows += [
            {"query": f"cheap {product}", "text": f"{product} sale", "label": 2},
            {"query": f"cheap {product}", "text": f"blue {product}", "label": 1},
            {"query": f"cheap {product}", "text": f"{other} new", "label": 0},
            {"query": f"cheap {product}", "text": f"fast {other}", "label": 0},
        ]
    return pd.DataFrame(rows)


def write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def quick_config(**overrides) -> TrainConfig:
    settings = {
        "epochs": 2, "batch_size": 4, "max_length": 16,
        "encoder_lr": 1e-3, "warmup_ratio": 0.1, "seed": 3, "progress": False,
        "checkpoint_every": 0,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


def head_state(path: Path) -> dict[str, torch.Tensor]:
    return BertSim.load(path).state_dict()


# ---------------------------------------------------------------------- training
def test_loss_falls_over_a_few_steps(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = write(toy_frame(), tmp_path / "train.csv")
    losses: list[float] = []
    train_reranker(
        train, tmp_path / "out", model=tiny_model_dir,
        config=quick_config(epochs=8, warmup_ratio=0.0),
        on_step=lambda info: losses.append(info.loss),
    )
    assert len(losses) == 8 * 6
    first, last = np.mean(losses[:6]), np.mean(losses[-6:])
    assert last < 0.6 * first, (first, last)


def test_head_learning_rate_is_ten_times_encoder(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16)
    config = TrainConfig(encoder_lr=1e-5)
    optimizer = build_optimizer(model, config)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert set(groups) == {"encoder", "encoder_no_decay", "head", "head_no_decay"}
    for suffix in ("", "_no_decay"):
        assert groups["encoder" + suffix]["lr"] == pytest.approx(1e-5)
        assert groups["head" + suffix]["lr"] == pytest.approx(1e-4)
    assert groups["encoder_no_decay"]["weight_decay"] == 0.0
    n_params = sum(len(g["params"]) for g in optimizer.param_groups)
    assert n_params == len(list(model.parameters()))
    # The ratio holds at every step of the schedule, warm-up and decay included.
    seen: list[dict[str, float]] = []
    train = write(toy_frame(2), tmp_path / "train.csv")
    train_reranker(train, tmp_path / "out", model=tiny_model_dir,
                   config=quick_config(encoder_lr=2e-5),
                   on_step=lambda info: seen.append(info.lrs))
    for lrs in seen:
        assert lrs["head"] == pytest.approx(10 * lrs["encoder"])
    assert seen[0]["encoder"] > 0  # the first step learns (warm-up counts from step 1)


def test_dev_metrics_and_best_epoch_in_manifest(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = write(toy_frame(), tmp_path / "train.jsonl")
    dev = write(toy_frame(3, seed=1), tmp_path / "dev.parquet")
    result = train_reranker(train, tmp_path / "out", model=tiny_model_dir, dev=dev,
                            config=quick_config(epochs=3))
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    for record in result.history:
        assert {"spearman", "pearson", "mse", "ndcg@10", "train_loss"} <= set(record)
    best = max(result.history, key=lambda r: r["spearman"])
    assert result.best_epoch == best["epoch"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["training"]["finished"] is True
    assert manifest["training"]["best_epoch"] == result.best_epoch
    assert manifest["encoder"]["pooling"] == "cls"  # random pooler bias is zero → untrained
    assert manifest["label_scale"] == {"min": 0.0, "max": 2.0, "mapped_to": [0.0, 2.0]}
    assert manifest["normalize"] is True and manifest["max_length"] == 16
    assert len(manifest["training"]["data"]["train"]["sha256"]) == 64
    assert manifest["training"]["data"]["dev"]["rows"] == 12
    assert not (tmp_path / "out" / "checkpoint").exists()


# ---------------------------------------------------------------------- save / load
def test_save_load_gives_identical_scores(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16, seed=1)
    with torch.no_grad():
        for p in model.head.parameters():
            p.normal_(0, 0.5)
    model.eval()
    texts = ["red shoes sale", "blue car", "cheap phone new fast", "hotel"]
    before = model.score("cheap shoes", texts)
    model.save(tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert {"config.json", "model.safetensors", "head.safetensors", "manifest.json"} <= set(names)
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl", ".pth"))]
    loaded = BertSim.load(tmp_path / "m", backend="torch")  # the same engine: the same bits
    np.testing.assert_array_equal(loaded.score("cheap shoes", texts), before)
    assert before.dtype == np.float32 and before.shape == (4,)


def test_load_never_unpickles(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16)
    model.save(tmp_path / "m")
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    BertSim.load(tmp_path / "m").score("red", ["blue"])


def test_pooler_choice(tiny_model_dir: Path, tmp_path: Path) -> None:
    assert BertSim.from_encoder(tiny_model_dir, max_length=16).pooling == "cls"
    model = BertSim.from_encoder(tiny_model_dir, pooling="pooler", max_length=16)
    assert model.pooling == "pooler" and model.encoder.pooler is not None
    model.save(tmp_path / "p")
    loaded = BertSim.load(tmp_path / "p", backend="torch")
    assert loaded.pooling == "pooler"
    np.testing.assert_array_equal(loaded.score("red", ["blue car"]), model.score("red", ["blue car"]))


def test_sentence_transformers_folder_with_transformer_module(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "st"
    shutil.copytree(tiny_model_dir, root / "0_Transformer")
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_Transformer",
         "type": "sentence_transformers.models.Transformer"},
    ]))
    model = BertSim.from_encoder(root, max_length=16)
    assert model.manifest["encoder"]["source_dir"] == str(root / "0_Transformer")
    with pytest.raises(ValueError, match="precision must be one of"):
        model.precision = "fp16"


# ---------------------------------------------------------------------- scoring
def test_rank_is_a_sort_over_score(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16, seed=2)
    with torch.no_grad():
        for p in model.head.parameters():
            p.normal_(0, 0.5)
    texts = ["red shoes", "blue car sale", "phone", "cheap new hotel pizza", "bike"]
    scores = model.score("cheap shoes", texts)
    ranked = model.rank("cheap shoes", texts)
    assert [tuple(r) for r in ranked] == [RANK_KEYS] * len(texts)
    assert [r["corpus_id"] for r in ranked] == list(np.argsort(-scores, kind="stable"))
    assert [r["score"] for r in ranked] == pytest.approx(sorted(scores, reverse=True))
    assert [r["text"] for r in ranked] == [texts[r["corpus_id"]] for r in ranked]
    assert len(model.rank("cheap shoes", texts, top_k=2)) == 2
    assert model.score("cheap shoes", []).shape == (0,)


def test_batching_and_length_sorting_do_not_change_scores(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=32, seed=4)
    texts = [" ".join(WORDS[: (i % 9) + 1]) for i in range(23)]
    one_by_one = np.array([model.score("cheap red", [t])[0] for t in texts])
    model.batch_size = 5
    np.testing.assert_allclose(model.score("cheap red", texts), one_by_one, atol=1e-5)


def test_score_refuses_bad_texts(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16)
    with pytest.raises(ValueError, match="text at row 1 is empty"):
        model.score("red", ["blue", "  "])
    with pytest.raises(ValueError, match="query at row 0 is empty"):
        model.score("", ["blue"])


def test_bf16_scores_close_to_fp32(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16, seed=5)
    fp32 = model.score("cheap shoes", ["red shoes sale", "blue car"])
    model.precision = "bf16"
    bf16 = model.score("cheap shoes", ["red shoes sale", "blue car"])
    np.testing.assert_allclose(bf16, fp32, atol=0.1)


# ---------------------------------------------------------------------- resume
class Killed(Exception):
    pass


def test_resume_after_kill_matches_uninterrupted_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = write(toy_frame(), tmp_path / "train.csv")  # 24 pairs, 6 steps per epoch
    dev = write(toy_frame(3, seed=1), tmp_path / "dev.csv")
    config = quick_config(epochs=3, checkpoint_every=4)
    whole = train_reranker(train, tmp_path / "whole", model=tiny_model_dir, dev=dev,
                           config=config)

    def kill_at_step_10(info) -> None:
        if info.global_step == 10:
            raise Killed

    with pytest.raises(Killed):
        train_reranker(train, tmp_path / "resumed", model=tiny_model_dir, dev=dev,
                       config=config,
                       on_step=kill_at_step_10)
    assert (tmp_path / "resumed" / "checkpoint").is_dir()
    steps: list[int] = []
    resumed = train_reranker(train, tmp_path / "resumed", model=tiny_model_dir, dev=dev,
                             config=config,
                             on_step=lambda info: steps.append(info.global_step))
    assert resumed.resumed_from_step == 8  # last checkpoint before the kill
    assert steps == list(range(9, 19))  # nothing finished is redone
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.best_epoch == whole.best_epoch
    a, b = head_state(tmp_path / "whole"), head_state(tmp_path / "resumed")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    for ra, rb in zip(whole.history, resumed.history):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-6)


def test_resume_refuses_a_different_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = write(toy_frame(), tmp_path / "train.csv")
    config = quick_config(checkpoint_every=2)

    def kill(info) -> None:
        if info.global_step == 3:
            raise Killed

    with pytest.raises(Killed):
        train_reranker(train, tmp_path / "out", model=tiny_model_dir, config=config, on_step=kill)
    other = quick_config(checkpoint_every=2, encoder_lr=5e-4)
    with pytest.raises(ValueError, match=r"different run \(differs in \['settings.encoder_lr'\]"):
        train_reranker(train, tmp_path / "out", model=tiny_model_dir, config=other)


def test_finished_output_is_not_overwritten_silently(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = write(toy_frame(2), tmp_path / "train.csv")
    config = quick_config(epochs=1)
    train_reranker(train, tmp_path / "out", model=tiny_model_dir, config=config)
    with pytest.raises(FolderError, match="already holds an adrecall bertsim; pass --overwrite"):
        train_reranker(train, tmp_path / "out", model=tiny_model_dir, config=config)
    train_reranker(train, tmp_path / "out", model=tiny_model_dir,
                   config=quick_config(epochs=1, overwrite=True))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match="holds files adrecall did not write"):
        train_reranker(train, tmp_path / "other", model=tiny_model_dir,
                       config=quick_config(overwrite=True))


def test_optimizer_state_round_trips_without_pickle(tiny_model_dir: Path) -> None:
    model = BertSim.from_encoder(tiny_model_dir, max_length=16)
    optimizer = build_optimizer(model, TrainConfig())
    batch = model.collate(model.encode_pairs(["red"], ["blue car"]), [0])
    model(**batch).sum().backward()
    optimizer.step()
    tensors, meta = optimizer_to_safe(optimizer)
    json.dumps(meta)
    fresh = build_optimizer(model, TrainConfig())
    optimizer_from_safe(fresh, tensors, json.loads(json.dumps(meta)))
    a, b = optimizer.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for index, state in a["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(value, b["state"][index][name])


# ---------------------------------------------------------------------- bad inputs
def test_missing_column_is_refused(tmp_path: Path) -> None:
    path = write(toy_frame().drop(columns=["label"]), tmp_path / "train.csv")
    with pytest.raises(PairsError, match=r"train pairs: .*missing column\(s\) \['label'\]"):
        read_pairs(path)


def test_configurable_columns(tmp_path: Path) -> None:
    frame = toy_frame().rename(columns={"query": "q", "text": "title", "label": "relevant"})
    path = write(frame, tmp_path / "train.tsv")
    pairs = read_pairs(path, PairFormat("q", "title", "relevant"))
    assert len(pairs) == len(frame) and pairs.queries[0] == frame["q"][0]


def test_label_outside_scale_is_refused(tmp_path: Path) -> None:
    frame = toy_frame()
    frame.loc[5, "label"] = 3
    path = write(frame, tmp_path / "train.csv")
    with pytest.raises(PairsError, match=r"data row 6 label 3 is outside the declared label scale"):
        read_pairs(path)


def test_declared_scale_maps_onto_zero_to_two(tmp_path: Path) -> None:
    frame = pd.DataFrame({"query": ["a", "b", "c"], "text": ["x", "y", "z"],
                          "label": [0.0, 2.5, 5.0]})
    pairs = read_pairs(write(frame, tmp_path / "stsb.csv"), PairFormat(label_max=5.0))
    np.testing.assert_allclose(pairs.labels, [0.0, 1.0, 2.0])


def test_non_numeric_label_is_refused(tmp_path: Path) -> None:
    frame = toy_frame().astype({"label": object})
    frame.loc[2, "label"] = "high"
    with pytest.raises(PairsError, match=r"data row 3 label 'high' .* is not a number"):
        read_pairs(write(frame, tmp_path / "train.csv"))


def test_empty_text_is_refused(tmp_path: Path) -> None:
    frame = toy_frame()
    frame.loc[4, "text"] = "   "
    with pytest.raises(PairsError, match=r"data row 5 column 'text' is empty"):
        read_pairs(write(frame, tmp_path / "train.tsv"))
    frame = toy_frame()
    frame.loc[1, "query"] = None
    with pytest.raises(PairsError, match=r"data row 2 has no 'query' value"):
        read_pairs(write(frame, tmp_path / "train.jsonl"))


def test_dev_file_in_another_layout_is_refused_before_training(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    train = write(toy_frame(), tmp_path / "train.csv")
    dev = write(toy_frame().rename(columns={"text": "title"}), tmp_path / "dev.csv")
    monkeypatch.setattr(BertSim, "from_encoder", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(PairsError, match=r"dev file .* does not match the training data's "
                                         r"layout: it lacks column\(s\) \['text'\]"):
        train_reranker(train, tmp_path / "out", model=tiny_model_dir, dev=dev,
                       config=quick_config())
    assert not (tmp_path / "out").exists()


def test_other_table_problems(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("query,text,label\n")
    with pytest.raises(PairsError, match="holds no rows"):
        read_pairs(empty)
    with pytest.raises(PairsError, match="unknown table format '.json'"):
        read_pairs(write(toy_frame(), tmp_path / "train.csv").rename(tmp_path / "train.json"))
    with pytest.raises(PairsError, match="2 queries, 1 texts and 2 labels"):
        pairs_from_lists(["a", "b"], ["x"], [0, 1])
    with pytest.raises(ValueError, match="label_max > label_min"):
        PairFormat(label_min=2, label_max=2)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp16")


def test_cli_train_reranker(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    from adrecall.cli import main

    frame = toy_frame().rename(columns={"text": "title"})
    frame["label"] = frame["label"] * 2.5  # declared 0–5 scale
    train = write(frame, tmp_path / "train.csv")
    code = main(["train-reranker", "--train", str(train), "--dev", str(train), "--out",
                 str(tmp_path / "out"), "--model", str(tiny_model_dir), "--text-column", "title",
                 "--label-max", "5", "--epochs", "1", "--batch-size", "8", "--max-length", "16",
                 "--quiet", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["best_epoch"] == 1  # stdout: the JSON alone
    assert BertSim.load(tmp_path / "out").score("cheap car", ["car sale"]).shape == (1,)
    frame.loc[0, "label"] = 7
    write(frame, train)
    code = main(["train-reranker", "--train", str(train), "--out", str(tmp_path / "out2"),
                 "--model", str(tiny_model_dir), "--text-column", "title", "--label-max", "5"])
    assert code == 2
    assert "data row 1 label 7 is outside the declared label scale 0..5" in capsys.readouterr().err


# ---------------------------------------------------------------------- the real encoder
def test_default_encoder_scores_pairs() -> None:
    model = BertSim.from_encoder("default", max_length=64)
    assert model.pooling == "cls"  # MiniLM-L6's pooler was never trained (bias all zero)
    assert model.encoder.config.hidden_size == 384
    scores = model.score("running shoes", ["Trail running shoes on sale", "Home insurance quote"])
    assert scores.shape == (2,) and scores.dtype == np.float32 and np.isfinite(scores).all()
