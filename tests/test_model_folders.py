"""Model folders adrecall writes and reads: each command replaces only its own kind of folder
and checks --out before any model loads; BertSim, fine-tuned encoder and adapted-model folders
carry checksums that every loader checks; weights in pickle formats are never read.

Everything runs on tiny random BERTs (tests/conftest.py, encoder_training/tiny_model.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import TINY_WORDS

from adrecall.cli import main
from adrecall.folders import (
    ADAPTED_MODEL,
    BERTSIM,
    ENCODER,
    MANIFEST_FILE,
    FolderError,
    folder_kind,
    write_manifest,
)

pytest.importorskip("jieba")

COMMANDS = ("train-reranker", "train-encoder", "extend-vocab", "pretrain", "distill")
KIND_OF = {"train-reranker": BERTSIM, "train-encoder": ENCODER, "extend-vocab": ADAPTED_MODEL,
           "pretrain": ADAPTED_MODEL, "distill": ADAPTED_MODEL}


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):  # type: ignore[no-untyped-def]
    """Tiny matrices on a shared 2-core machine: see conftest's torch_one_thread."""


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


@pytest.fixture(scope="module")
def index_dir(data: dict[str, Path], tiny_model_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    from index_build.build_job import build_index

    out = tmp_path_factory.mktemp("index") / "idx"
    build_index(data["ads"], out, model=str(tiny_model_dir), progress=False)
    return out


def command_line(command: str, out: Path, model: Path, data: dict[str, Path]) -> list[str]:
    """The shortest run of ``command`` writing ``out`` from ``model``."""
    extra = {
        "train-reranker": ["--train", str(data["pairs"]), "--epochs", "1", "--max-length", "16",
                           "--quiet"],
        "train-encoder": ["--train", str(data["pairs"]), "--max-steps", "1", "--batch-size", "4",
                          "--quiet"],
        "extend-vocab": ["--texts", str(data["corpus"])],
        "pretrain": ["--texts", str(data["corpus"]), "--max-steps", "1", "--quiet"],
        "distill": ["--texts", str(data["corpus"]), "--max-steps", "1", "--quiet"],
    }[command]
    return [command, "--model", str(model), "--out", str(out), *extra]


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any configuration, model or tokenizer is read."""
    import transformers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before --out was checked")

    for cls in (transformers.AutoConfig, transformers.AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", refuse)


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def flip_a_bit(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def other_kind_folder(path: Path, kind: str) -> Path:
    """A folder of ``kind`` as adrecall writes it (contents beside the point here)."""
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    write_manifest(path, kind)
    return path


# ---------------------------------------------------------------- one guard, its own kind only
@pytest.mark.parametrize("command", COMMANDS)
def test_overwrite_refuses_an_index(command: str, index_dir: Path, tiny_model_dir: Path,
                                    data: dict[str, Path], no_model_loads: None,
                                    capsys: pytest.CaptureFixture) -> None:
    """`train-reranker --overwrite` once took any folder with a manifest.json for a BertSim."""
    before = contents(index_dir)
    argv = command_line(command, index_dir, tiny_model_dir, data) + ["--overwrite"]
    assert main(argv) == 2
    err = one_error_line(capsys)
    assert f"holds an adrecall index; this command writes an adrecall {KIND_OF[command]}" in err
    assert contents(index_dir) == before


@pytest.mark.parametrize(("command", "found"), [
    (command, found) for command in COMMANDS
    for found in (BERTSIM, ENCODER, ADAPTED_MODEL, "files of the user") if found != KIND_OF[command]
])
def test_a_command_replaces_only_its_own_kind(command: str, found: str, tiny_model_dir: Path,
                                              data: dict[str, Path], tmp_path: Path,
                                              no_model_loads: None,
                                              capsys: pytest.CaptureFixture) -> None:
    """Another kind of model folder, or files adrecall did not write, even with --overwrite."""
    if found in (BERTSIM, ENCODER, ADAPTED_MODEL):
        out = other_kind_folder(tmp_path / "out", found)
        expected = f"holds an adrecall {found}"
    else:
        out = tmp_path / "out"
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")
        expected = r"holds files adrecall did not write (thesis.tex)"
    before = contents(out)
    assert main(command_line(command, out, tiny_model_dir, data) + ["--overwrite"]) == 2
    assert expected in one_error_line(capsys)
    assert contents(out) == before


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_bad_out_is_one_line_before_any_model_loads_and_leaves_nothing(
    command: str, where: str, tiny_model_dir: Path, data: dict[str, Path], tmp_path: Path,
    no_model_loads: None, capsys: pytest.CaptureFixture,
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" if where == "a file" else tmp_path / "notes.txt" / "model"
    assert main(command_line(command, out, tiny_model_dir, data)) == 2
    assert "notes.txt" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert not list(tmp_path.parent.glob(f"{tmp_path.name}*.checkpoints"))


def test_adapted_models_are_one_kind_each_step_may_replace(
    tiny_model_dir: Path, data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
) -> None:
    """extend-vocab, pretrain and distill write one kind: each replaces another's output with
    --overwrite, never the folder it reads."""
    extended, other = tmp_path / "extended", tmp_path / "other"
    for out in (extended, other):
        assert main(command_line("extend-vocab", out, tiny_model_dir, data)) == 0
    assert main(command_line("pretrain", other, extended, data)) == 2
    assert "already holds an adrecall adapted-model; pass --overwrite" in one_error_line(capsys)
    capsys.readouterr()
    assert main(command_line("pretrain", other, extended, data) + ["--overwrite"]) == 0
    manifest = json.loads((other / MANIFEST_FILE).read_text())
    assert (manifest["kind"], manifest["step"], manifest["source"]) == (
        ADAPTED_MODEL, "pretrain", str(extended))
    capsys.readouterr()
    before = contents(extended)
    assert main(command_line("pretrain", extended, extended, data) + ["--overwrite"]) == 2
    assert "is, holds or sits inside the input" in one_error_line(capsys)
    assert contents(extended) == before


def test_reranker_killed_while_saving_is_refused_at_load_then_resumes(
    tiny_model_dir: Path, data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A save cut short leaves a folder loaders refuse; the same run resumes from its checkpoint
    (kept beside it) and ends with a whole, checked BertSim."""
    import rerank.model
    from rerank import BertSim, TrainConfig, train_reranker

    out = tmp_path / "sim"
    config = TrainConfig(epochs=2, batch_size=8, max_length=16,
                         progress=False, checkpoint_every=0, seed=1)
    real_save_file = rerank.model.save_file
    saves = []

    def save_file_then_die(tensors: dict, filename: str) -> None:
        if Path(filename).parent == out:
            saves.append(filename)
            if len(saves) == 2:  # the best model of epoch 2, after the encoder was written
                raise KeyboardInterrupt("killed while saving")
        real_save_file(tensors, filename)

    monkeypatch.setattr(rerank.model, "save_file", save_file_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_reranker(data["pairs"], out, model=tiny_model_dir, config=config)
    monkeypatch.setattr(rerank.model, "save_file", real_save_file)
    assert (out / "checkpoint").is_dir()
    with pytest.raises(FolderError, match="an unfinished adrecall bertsim"):
        BertSim.load(out)
    result = train_reranker(data["pairs"], out, model=tiny_model_dir, config=config)
    assert result.resumed_from_step is not None
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["kind"] == BERTSIM and manifest["training"]["finished"] is True
    assert {"model.safetensors", "head.safetensors", "config.json"} <= set(manifest["files"])
    assert not any(name.startswith("checkpoint") for name in manifest["files"])
    assert BertSim.load(out).score("cheap car", ["car sale"]).shape == (1,)


# ---------------------------------------------------------------- checksums checked at load
@pytest.fixture
def saved_bertsim(tiny_model_dir: Path, tmp_path: Path) -> Path:
    from rerank import BertSim

    return BertSim.from_encoder(tiny_model_dir, max_length=16, seed=0).save(tmp_path / "sim")


@pytest.mark.parametrize("damage", ["flipped bit", "truncated"])
def test_damaged_bertsim_weights_are_refused_by_search(
    damage: str, saved_bertsim: Path, index_dir: Path, capsys: pytest.CaptureFixture,
) -> None:
    """A flipped bit once changed the ranking with exit 0; a truncated file gave a traceback."""
    from rerank import BertSim

    weights = saved_bertsim / "model.safetensors"
    if damage == "flipped bit":
        flip_a_bit(weights)
    else:
        weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(FolderError, match="model.safetensors fails its checksum"):
        BertSim.load(saved_bertsim)
    assert main(["search", str(index_dir), "cheap car", "--reranker", str(saved_bertsim)]) == 2
    err = one_error_line(capsys)
    assert "model.safetensors fails its checksum" in err and "train-reranker" in err


def test_bertsim_without_checksums_is_refused_naming_the_fix(saved_bertsim: Path) -> None:
    """A BertSim written before manifests recorded checksums cannot be trusted as it stands."""
    from rerank import BertSim

    manifest = json.loads((saved_bertsim / MANIFEST_FILE).read_text())
    for key in ("kind", "files"):
        manifest.pop(key, None)
    manifest["format_version"] = 1
    (saved_bertsim / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(FolderError, match="records no file checksums; train it again with "
                                          "`adrecall train-reranker`"):
        BertSim.load(saved_bertsim)


def test_bertsim_load_refuses_another_kind(tmp_path: Path) -> None:
    from rerank import BertSim

    folder = other_kind_folder(tmp_path / "enc", ENCODER)
    with pytest.raises(ValueError, match="holds an adrecall encoder, not a BertSim"):
        BertSim.load(folder)


@pytest.mark.slow
def test_fine_tuned_encoder_is_checked_at_load(data: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    from encoder_training.finetune import TRAINING_FILE, TrainEncoderConfig, train_encoder
    from encoder_training.tiny_model import make_tiny_model
    from retrieval.encoder import Encoder

    base = make_tiny_model(tmp_path / "base")
    out = tmp_path / "tuned"
    train_encoder(data["pairs"], out, model=base,
                  config=TrainEncoderConfig(loss="cosent", max_steps=1, batch_size=4,
                                            progress=False))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["kind"] == ENCODER and TRAINING_FILE in manifest["files"]
    assert Encoder(out).encode(["cheap car"]).shape == (1, 32)
    flip_a_bit(out / "model.safetensors")
    with pytest.raises(FolderError, match="fails its checksum.*train-encoder"):
        Encoder(out)
    capsys.readouterr()  # training's progress output
    assert main(["build", "--ads", str(data["ads"]), "--out", str(tmp_path / "idx"),
                 "--model", str(out), "--quiet"]) == 2
    assert "model.safetensors fails its checksum" in one_error_line(capsys)


def test_adapted_model_is_checked_by_every_loader(tiny_model_dir: Path, data: dict[str, Path],
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    from adrecall.model_loading import load_sentence_transformer, load_tokenizer
    from domain_adapt import model_io
    from domain_adapt.vocab_extension import extend_vocabulary
    from rerank import BertSim
    from retrieval.encoder import Encoder

    out = tmp_path / "extended"
    extend_vocabulary(data["corpus"].read_text().splitlines(), out, model=tiny_model_dir)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert (manifest["kind"], manifest["step"]) == (ADAPTED_MODEL, "extend-vocab")
    assert {"model.safetensors", "domain_adapt.json", "tokenizer.json"} <= set(manifest["files"])
    Encoder(out)
    flip_a_bit(out / "tokenizer.json", offset=len((out / "tokenizer.json").read_bytes()) // 2)
    loaders = {
        "Encoder": lambda: Encoder(out),
        "load_sentence_transformer": lambda: load_sentence_transformer(out),
        "load_tokenizer": lambda: load_tokenizer(out),
        "load_base_model": lambda: model_io.load_base_model(out),
        "BertSim.from_encoder": lambda: BertSim.from_encoder(out),
    }
    for name, load in loaders.items():
        with pytest.raises(FolderError, match="tokenizer.json fails its checksum"):
            load()
            pytest.fail(f"{name} loaded a damaged folder")
    capsys.readouterr()
    assert main(command_line("pretrain", tmp_path / "next", out, data)) == 2
    assert "tokenizer.json fails its checksum" in one_error_line(capsys)
    assert not (tmp_path / "next").exists()  # refused as it was named, before --out was made


def test_copy_model_tree_leaves_the_source_manifest_behind(tiny_model_dir: Path,
                                                           data: dict[str, Path],
                                                           tmp_path: Path) -> None:
    from domain_adapt import model_io
    from domain_adapt.vocab_extension import extend_vocabulary

    source = tmp_path / "extended"
    extend_vocabulary(data["corpus"].read_text().splitlines(), source, model=tiny_model_dir)
    copy = tmp_path / "copy"
    copy.mkdir()
    model_io.copy_model_tree(source, copy)
    assert folder_kind(copy) is None
    assert MANIFEST_FILE not in {p.name for p in copy.rglob("*")}


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
    from domain_adapt import model_io
    from rerank import BertSim
    from retrieval.encoder import Encoder

    message = (r"only in pickle format \(pytorch_model.bin\).*"
               r"save_pretrained\(dir, safe_serialization=True\)")
    for load in (lambda: Encoder(pickle_only_model),
                 lambda: BertSim.from_encoder(pickle_only_model),
                 lambda: model_io.load_base_model(pickle_only_model)):
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
    from adrecall import model_loading

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load (unpickling) was called")

    monkeypatch.setattr(model_loading, "check_model_folder", lambda path: None)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(OSError, match="model.safetensors"):
        model_loading.load_sentence_transformer(pickle_only_model)
    with pytest.raises(OSError, match="model.safetensors"):
        model_loading.load_hf_encoder(pickle_only_model, with_pooler=False)

