"""adrecall.folders: the one output-folder guard, manifests with checksums, verification."""

from __future__ import annotations

import errno
import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adrecall import folders
from adrecall.folders import (
    ADAPTED_MODEL,
    BERTSIM,
    ENCODER,
    INDEX,
    KINDS,
    MANIFEST_FILE,
    FolderError,
    check_out,
    file_digest,
    folder_kind,
    mark_unfinished,
    prepare_out,
    record_change,
    verify_folder,
    write_manifest,
)

MODEL_FILES = {"model.safetensors": b"w", "sub/config.json": b"{}"}


def written(folder: Path, kind: str, files: dict[str, bytes]) -> Path:
    """A folder as adrecall writes it: the files, then a manifest of ``kind`` recording them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    write_manifest(folder, kind, {"note": "test"})
    return folder


def listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- check_out / prepare_out
def test_absent_empty_and_keep_only_folders_are_accepted(tmp_path: Path) -> None:
    deeper = tmp_path / "new" / "deeper"
    assert check_out(deeper, BERTSIM, overwrite=False) == deeper
    assert not (tmp_path / "new").exists()  # nothing is created by the check
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty", ENCODER, overwrite=False)
    (tmp_path / "resumable" / "checkpoint").mkdir(parents=True)
    check_out(tmp_path / "resumable", ADAPTED_MODEL, overwrite=False, keep=("checkpoint",))


def test_a_file_or_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match="is a file; give a folder"):
        check_out(tmp_path / "notes.txt", BERTSIM, overwrite=True)
    with pytest.raises(FolderError, match="notes.txt' is a file, not a folder"):
        check_out(tmp_path / "notes.txt" / "out", BERTSIM, overwrite=True)


def test_an_unwritable_location_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe really writes (root ignores permission bits); a read-only mount fails it."""
    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(folders.tempfile, "TemporaryFile", read_only)
    with pytest.raises(FolderError, match="cannot write in .*Read-only file system"):
        check_out(tmp_path / "out", ENCODER, overwrite=False)


@pytest.mark.parametrize("found", [k for k in KINDS if k != BERTSIM])
def test_a_folder_of_another_kind_is_refused_naming_it(tmp_path: Path, found: str) -> None:
    folder = written(tmp_path / "other", found, {"a.bin": b"x"})
    with pytest.raises(FolderError, match=f"holds an adrecall {found}; this command writes an "
                                          "adrecall bertsim"):
        check_out(folder, BERTSIM, overwrite=True)


def test_manifests_written_before_kind_existed_are_recognised(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    index.mkdir()
    (index / MANIFEST_FILE).write_text(json.dumps({"format_version": 1, "factory": "IDMap2,Flat"}))
    bertsim = tmp_path / "sim"
    bertsim.mkdir()
    (bertsim / MANIFEST_FILE).write_text(json.dumps({"format": "adrecall-bertsim"}))
    assert (folder_kind(index), folder_kind(bertsim)) == (INDEX, BERTSIM)
    with pytest.raises(FolderError, match="holds an adrecall index"):
        check_out(index, BERTSIM, overwrite=True)


def test_files_adrecall_did_not_write_are_refused_whatever_overwrite_says(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    (mine / MANIFEST_FILE).write_text(json.dumps({"name": "someone else's manifest"}))
    with pytest.raises(FolderError, match=r"files adrecall did not write \(manifest.json, thesis"):
        check_out(mine, ENCODER, overwrite=True)
    model = written(tmp_path / "model", ENCODER, MODEL_FILES)
    (model / "notes.txt").write_text("added by hand")
    with pytest.raises(FolderError, match=r"holds an adrecall encoder and also files adrecall did "
                                          r"not write \(notes.txt\)"):
        check_out(model, ENCODER, overwrite=True)


def test_its_own_kind_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    model = written(tmp_path / "model", ENCODER, MODEL_FILES)
    with pytest.raises(FolderError, match="already holds an adrecall encoder; pass --overwrite"):
        check_out(model, ENCODER, overwrite=False)
    (model / "checkpoint").mkdir()
    (model / "checkpoint" / "state.json").write_text("{}")
    prepare_out(model, ENCODER, overwrite=True, keep=("checkpoint",))
    assert sorted(os.listdir(model)) == ["checkpoint"]
    assert (model / "checkpoint" / "state.json").is_file()


@pytest.mark.parametrize("relation", ["same", "out holds the input", "out inside the input"])
def test_an_out_that_is_holds_or_sits_inside_an_input_is_refused(tmp_path: Path,
                                                                 relation: str) -> None:
    model = written(tmp_path / "a" / "model", ADAPTED_MODEL, {"model.safetensors": b"w"})
    out = {"same": model, "out holds the input": tmp_path / "a",
           "out inside the input": model / "next"}[relation]
    with pytest.raises(FolderError, match="is, holds or sits inside the input"):
        prepare_out(out, ADAPTED_MODEL, overwrite=True, inputs=(model,))
    assert (model / "model.safetensors").read_bytes() == b"w"


# Property: the check never changes the folder, and it lets through exactly the folders the
# command may write: nothing but ``keep`` entries, or its own kind with every entry recorded
# and overwrite given.
_NAMES = st.text(string.ascii_lowercase, min_size=1, max_size=4)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    recorded=st.lists(_NAMES, max_size=3, unique=True),
    extra=st.lists(_NAMES, max_size=2, unique=True),
    found=st.sampled_from((None, *KINDS)),
    kind=st.sampled_from(KINDS),
    overwrite=st.booleans(),
    keep_checkpoint=st.booleans(),
)
def test_check_out_changes_nothing_and_passes_only_what_it_may_replace(
    tmp_path_factory: pytest.TempPathFactory, recorded: list[str], extra: list[str],
    found: str | None, kind: str, overwrite: bool, keep_checkpoint: bool,
) -> None:
    out = tmp_path_factory.mktemp("out")
    for name in recorded:
        (out / name).write_text(name)
    if found is not None:
        write_manifest(out, found)
    extra = [e for e in extra if e not in recorded]
    for name in extra:
        (out / name).write_text("foreign")
    if keep_checkpoint:
        (out / "checkpoint").mkdir()
    before = listing(out)
    entries = set(os.listdir(out)) - {"checkpoint"}
    may = not entries or (found == kind and not extra and overwrite)
    try:
        check_out(out, kind, overwrite=overwrite, keep=("checkpoint",))
        passed = True
    except FolderError:
        passed = False
    assert passed == may
    assert listing(out) == before


# ---------------------------------------------------------------- manifests and verification
def test_write_manifest_records_every_file_but_skipped_ones(tmp_path: Path) -> None:
    folder = written(tmp_path / "m", BERTSIM, {"model.safetensors": b"w", "tok/vocab.txt": b"v"})
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "model.safetensors").write_bytes(b"c")
    manifest = write_manifest(folder, BERTSIM, {"max_length": 16, "unfinished": True},
                              skip=("checkpoint",))
    assert manifest["kind"] == BERTSIM and manifest["max_length"] == 16
    assert "unfinished" not in manifest
    assert sorted(manifest["files"]) == ["model.safetensors", "tok/vocab.txt"]
    assert json.loads((folder / MANIFEST_FILE).read_text()) == manifest
    assert verify_folder(folder) == manifest
    assert not (folder / (MANIFEST_FILE + ".tmp")).exists()


@pytest.mark.parametrize("damage", ["flip a bit", "truncate", "delete"])
def test_a_damaged_file_is_refused_by_verify_folder(tmp_path: Path, damage: str) -> None:
    folder = written(tmp_path / "m", ENCODER, {"model.safetensors": bytes(range(256)) * 64})
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "flip a bit":
        data[1000] ^= 0x01
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(bytes(data[:4096]))
    else:
        weights.unlink()
    message = "is missing" if damage == "delete" else "fails its checksum"
    with pytest.raises(FolderError, match=f"model.safetensors {message}.*adrecall train-encoder"):
        verify_folder(folder)


def test_an_unfinished_write_is_refused_at_load_but_may_be_replaced_by_its_kind(
    tmp_path: Path,
) -> None:
    folder = written(tmp_path / "m", BERTSIM, {"model.safetensors": b"old"})
    mark_unfinished(folder, BERTSIM)
    (folder / "model.safetensors").write_bytes(b"half")
    with pytest.raises(FolderError, match="an unfinished adrecall bertsim"):
        verify_folder(folder)
    check_out(folder, BERTSIM, overwrite=True)
    with pytest.raises(FolderError, match="holds an adrecall bertsim"):
        check_out(folder, ENCODER, overwrite=True)


def test_a_folder_without_an_adrecall_manifest_is_left_to_its_loader(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert verify_folder(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"name": "a hub model card"}))
    assert verify_folder(tmp_path) is None


def test_record_change_updates_the_changed_file_only(tmp_path: Path) -> None:
    folder = written(tmp_path / "m", ADAPTED_MODEL, {"tokenizer_config.json": b"{}", "w": b"w"})
    (folder / "tokenizer_config.json").write_text('{"flag": true}')
    (folder / "w").write_bytes(b"damaged")
    record_change(folder, folder / "tokenizer_config.json")
    with pytest.raises(FolderError, match="w fails its checksum"):
        verify_folder(folder)
    (folder / "w").write_bytes(b"w")
    verify_folder(folder)


def test_file_digest_sees_a_file_changed_after_it_was_hashed(tmp_path: Path) -> None:
    """Digests are cached by path, inode, size and timestamps: a rewrite is hashed anew."""
    folder = written(tmp_path / "m", ENCODER, {"model.safetensors": b"a" * 4096})
    weights = folder / "model.safetensors"
    verify_folder(folder)  # the digest is now cached
    first = file_digest(weights)
    stat = weights.stat()
    weights.write_bytes(b"b" * 4096)  # same size
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert file_digest(weights) != first
    with pytest.raises(FolderError, match="fails its checksum"):
        verify_folder(folder)
