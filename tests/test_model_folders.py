"""Model folders adrecall reads: weights in pickle formats are never read, and a user's own
model loads as it is.

Everything runs on tiny random BERTs (tests/conftest.py, encoder_training/tiny_model.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from adrecall.cli import main
from adrecall.folders import MANIFEST_FILE
from conftest import TINY_WORDS

pytest.importorskip("jieba")


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """Tiny matrices on a shared 2-core machine: one thread is much faster than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Labelled pairs (query, text, label), a text corpus and an ad table in the tiny vocabulary."""
    folder = tmp_path_factory.mktemp("data")
    products = TINY_WORDS[3:]
    rows = []
    for i, product in enumerate(products):
        other = products[(i + 3) % len(products)]
        rows += [{"query": f"cheap {product}", "text": f"{product} sale", "label": 2},
                 {"query": f"cheap {product}", "text": f"blue {product}", "label": 1},
                 {"query": f"cheap {product}", "text": f"{other} new", "label": 0}]
    frame = pd.DataFrame(rows)
    frame.to_csv(folder / "pairs.csv", index=False)
    (folder / "corpus.txt").write_text("\n".join(frame["text"]), encoding="utf-8")
    ads = frame.drop_duplicates("text")
    pd.DataFrame({"ad_id": [f"a{i}" for i in range(len(ads))], "text": ads["text"]}).to_csv(
        folder / "ads.csv", index=False)
    return {name: folder / file for name, file in
            (("pairs", "pairs.csv"), ("corpus", "corpus.txt"), ("ads", "ads.csv"))}


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_model_without_an_adrecall_manifest_loads_as_today(tiny_model_dir: Path,
                                                           tmp_path: Path) -> None:
    """A user's own Hugging Face model (here with a manifest.json of its own) has nothing to
    check against and loads as before."""
    import shutil

    from rerank import BertSim
    from retrieval.encoder import Encoder

    mine = tmp_path / "mine"
    shutil.copytree(tiny_model_dir, mine)
    (mine / MANIFEST_FILE).write_text(json.dumps({"name": "my model", "files": {"x": "y"}}))
    assert Encoder(mine).encode(["cheap car"]).shape == (1, 32)
    assert BertSim.from_encoder(mine, max_length=16).score("cheap", ["car"]).shape == (1,)


# ---------------------------------------------------------------- never unpickle
@pytest.fixture
def pickle_only_model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny BERT with its weights as pytorch_model.bin only (transformers 5 always writes
    safetensors, so the pickle is written directly)."""
    from transformers import AutoModel

    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    torch.save(AutoModel.from_pretrained(str(tiny_model_dir)).state_dict(),
               folder / "pytorch_model.bin")
    return folder


def test_pickle_only_model_is_refused(pickle_only_model: Path, data: dict[str, Path],
                                      tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rerank import BertSim
    from retrieval.encoder import Encoder

    message = (r"only in pickle format \(pytorch_model.bin\).*"
               r"save_pretrained\(dir, safe_serialization=True\)")
    for load in (lambda: Encoder(pickle_only_model),
                 lambda: BertSim.from_encoder(pickle_only_model)):
        with pytest.raises(ValueError, match=message):
            load()
    out = tmp_path / "idx"
    assert main(["build", "--ads", str(data["ads"]), "--out", str(out),
                 "--model", str(pickle_only_model), "--quiet"]) == 2
    assert "only in pickle format (pytorch_model.bin)" in one_error_line(capsys)
    assert not out.exists()


def test_pickle_only_sentence_transformers_module_is_refused(tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import Dense

    from adrecall.model_loading import load_sentence_transformer
    from encoder_training.tiny_model import make_tiny_model
    from retrieval.encoder import Encoder

    folder = make_tiny_model(tmp_path / "st")
    model = load_sentence_transformer(folder)
    model.append(Dense(32, 8))
    model.save(str(folder), safe_serialization=False)
    assert (folder / "2_Dense" / "pytorch_model.bin").is_file()
    with pytest.raises(ValueError, match=r"2_Dense: its weights are only in pickle format"):
        Encoder(folder)


def test_loading_never_falls_back_to_torch_load(pickle_only_model: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Even past the folder check, the loaders ask transformers for safetensors only."""
    import adrecall.model_loading as model_loading

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load (unpickling) was called")

    monkeypatch.setattr(model_loading, "check_model_folder", lambda path: None)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(OSError, match="model.safetensors"):
        model_loading.load_sentence_transformer(pickle_only_model)
    with pytest.raises(OSError, match="model.safetensors"):
        model_loading.load_hf_encoder(pickle_only_model, with_pooler=False)

