"""``adrecall info``: parameter counts from the config equal the real models', the embedded
model's vocabulary and settings, BertSim and index folders, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from adrecall.cli import main
from adrecall.model_info import bert_parameter_counts, count_cjk_characters, inspect_target
from tests.conftest import write_table

BERT_BASE = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
MINILM = {**BERT_BASE, "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}


def _numel(module: object) -> int:
    return sum(p.numel() for p in module.parameters())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("shape", "about"),
    [(BERT_BASE, 109_482_240), (MINILM, 22_713_216)],
    ids=["bert-base", "minilm"],
)
def test_config_counts_equal_a_real_bert_model(
    shape: dict, about: int, torch_one_thread: None
) -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(**shape))  # random init on CPU
    counts = bert_parameter_counts(BertConfig(**shape).to_dict(), pooler=True)
    assert counts["total"] == _numel(model) == about
    assert counts["embeddings"]["total"] == _numel(model.embeddings)
    assert counts["embeddings"]["word"] == model.embeddings.word_embeddings.weight.numel()
    assert counts["embeddings"]["position"] == model.embeddings.position_embeddings.weight.numel()
    assert (
        counts["embeddings"]["token_type"] == model.embeddings.token_type_embeddings.weight.numel()
    )
    assert counts["embeddings"]["layer_norm"] == _numel(model.embeddings.LayerNorm)
    assert len(counts["layers"]) == len(model.encoder.layer)
    for part, layer in zip(counts["layers"], model.encoder.layer):
        assert part["attention"] == _numel(layer.attention)
        assert part["feed_forward"] == _numel(layer.intermediate) + _numel(layer.output)
        assert part["total"] == _numel(layer)
    assert counts["pooler"] == _numel(model.pooler)
    without = bert_parameter_counts(shape, pooler=False)
    assert without["total"] == counts["total"] - counts["pooler"] and without["pooler"] == 0


def test_config_counts_equal_a_roberta_model(torch_one_thread: None) -> None:
    from transformers import RobertaConfig, RobertaModel

    config = RobertaConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=66,
        type_vocab_size=1,
    )
    counts = bert_parameter_counts(config.to_dict(), pooler=True)
    assert counts["total"] == _numel(RobertaModel(config))


def test_cjk_count_uses_single_ideographs_only() -> None:
    tokens = ["中", "##中", "中国", "㐀", "豈", "\U00020000", "a", "ア", "한", "。"]
    assert count_cjk_characters(tokens) == 4  # 中, 㐀 (ext. A), 豈 (compat.), U+20000 (ext. B)


def test_info_default_matches_the_loaded_model(capsys: pytest.CaptureFixture[str]) -> None:
    from adrecall.model_loading import load_sentence_transformer
    from adrecall.models import default_model_dir

    assert main(["info", "default"]) == 0
    text = capsys.readouterr().out
    loaded = load_sentence_transformer(default_model_dir())
    total = _numel(loaded)
    assert total == 22_713_216
    assert [line.split()[-1] for line in text.splitlines() if line.strip().startswith("total")] == [
        f"{total:,}"
    ]
    assert "layer 5 feed-forward" in text and "pooler" in text
    assert "30,522 tokens" in text and "244 single CJK characters" in text
    assert "max length: 256 tokens" in text and "pooling: mean" in text and "WoBERT: off" in text

    assert main(["info", "default", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)  # JSON alone on stdout
    assert info["parameters"]["total"] == total == info["weights_on_disk"]["parameters"]
    assert info["vocabulary"] == {
        "size": 30522,
        "embedding_rows": 30522,
        "cjk_characters": 244,
        "source": "tokenizer.json",
    }
    assert info["max_length"] == loaded.max_seq_length == 256
    assert (info["pooling"], info["wobert"], info["normalize_embeddings"]) == ("mean", False, True)
    assert info["name"] == "default" and info["format"] == "sentence-transformers"


def test_plain_folder_with_wobert_flag(tiny_model_dir: Path, tmp_path: Path) -> None:
    from adrecall.model_loading import set_wobert_flag

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "tiny"))
    info = inspect_target(folder)
    assert (info["format"], info["wobert"], info["pooling"]) == ("huggingface", False, "mean")
    assert info["parameters"]["total"] == info["weights_on_disk"]["parameters"]
    assert info["vocabulary"]["size"] == 47 and info["vocabulary"]["cjk_characters"] == 0
    set_wobert_flag(folder, True)
    assert inspect_target(folder)["wobert"] is True


@pytest.mark.parametrize("pooling", ["cls", "pooler"])
def test_bertsim_counts_equal_the_loaded_bertsim(
    pooling: str,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    torch_one_thread: None,
) -> None:
    from rerank import BertSim

    path = BertSim.from_encoder(tiny_model_dir, pooling=pooling, max_length=32).save(
        tmp_path / "sim"
    )
    loaded = BertSim.load(path)
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "bertsim" and info["pooling"] == pooling and info["max_length"] == 32
    parts = info["parameters"]
    assert parts["total"] == _numel(loaded) == info["weights_on_disk"]["parameters"]
    assert parts["head"] == _numel(loaded.head)
    assert parts["pooler"] == (_numel(loaded.encoder.pooler) if pooling == "pooler" else 0)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "BertSim head" in text and "pooling: " + pooling in text and "max length: 32" in text


def test_info_on_an_index(
    tmp_path: Path, ads_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    ads = write_table(ads_frame, tmp_path / "ads.csv")
    out = tmp_path / "idx"
    assert (
        main(["build", "--ads", str(ads), "--out", str(out), "--quiet", "--index-type", "hnsw"])
        == 0
    )
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "model: default" in text and "ads: 12, dimension 384" in text
    assert "index type: hnsw" in text and "text normalisation: on" in text
    for name in ("index.faiss", "ads.parquet", "manifest.json", "total"):
        assert any(line.split()[0] == name for line in text.splitlines() if line.startswith("  "))

    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    assert info["files"] == sizes and info["total_bytes"] == sum(sizes.values())
    assert info["manifest"]["count"] == 12 and info["manifest"]["index_type"] == "hnsw"


@pytest.mark.parametrize("kind", ["missing", "file", "other folder"])
def test_neither_model_nor_index_is_one_line_and_exit_2(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "thing"
    if kind == "file":
        target.write_text("x")
    elif kind == "other folder":
        target.mkdir()
        (target / "notes.txt").write_text("x")
    assert main(["info", str(target)]) == 2
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert captured.out == "" and "\n" not in error
    assert error.startswith("adrecall info: error:") and str(target) in error
    assert "expected a model folder" in error and "index folder" in error
