"""A build touches only what is its own: --out checked before any work, checkpoints it made,
and an index swapped in so that --out always loads, whenever the build is killed."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from adrecall.cli import main
from index_build import build_job
from index_build.build_job import build_index
from index_build.checkpoint import CheckpointError
from retrieval import folder_swap
from retrieval.encoder import Encoder
from retrieval.folder_swap import KILL_AT_STEP_ENV, KILLED_STATUS
from retrieval.index_store import MANIFEST_FILE, IndexFormatError, clean_up_leftovers
from retrieval.retriever import Retriever
from tests.conftest import ADS, write_table
from tests.hash_encoder import HashEncoder

REPO = Path(__file__).resolve().parents[1]


def _ads(tmp_path: Path, count: int) -> Path:
    rows = [(f"a{i:02d}", f"{ADS[i % len(ADS)][1]} (offer {i})") for i in range(count)]
    frame = pd.DataFrame({"ad_id": [a for a, _ in rows], "text": [t for _, t in rows]})
    return write_table(frame, tmp_path / f"ads-{count}.csv")


def _build(ads: Path, out: Path, **options: object) -> None:
    build_index(ads, out, model=HashEncoder(), chunk_rows=10, progress=False, **options)


def _loaded_count(out: Path) -> int:
    return len(Retriever.load(out, model=HashEncoder()))


class _NoModel(Encoder):
    def __init__(self, *args: object, **kwargs: object) -> None:
        pytest.fail("the model loaded before --out was checked")


# ---------------------------------------------------------------- what --out and its siblings hold
def test_partial_folder_that_no_build_made_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "out" / "p2"
    mine = tmp_path / "out" / "p2.partial" / "2024" / "a.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    ads = _ads(tmp_path, 12)
    for resume in (False, True):
        with pytest.raises(CheckpointError, match=r"p2\.partial is not an adrecall checkpoint"):
            _build(ads, out, resume=resume)
    assert mine.read_text() == "mine" and not out.exists()


def _bertsim(out: Path) -> None:
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights")
    (out / MANIFEST_FILE).write_text(
        json.dumps({"kind": "bertsim", "files": {"model.safetensors": "x"}})
    )


def _legacy_bertsim(out: Path) -> None:
    out.mkdir()
    (out / MANIFEST_FILE).write_text(json.dumps({"format": "adrecall-bertsim"}))


def _model(out: Path) -> None:
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(b"weights")


def _index_and_notes(out: Path) -> None:
    _build(_ads(out.parent, 12), out)
    (out / "notes.txt").write_text("keep me")


def _file(out: Path) -> None:
    out.write_text("a file")


def _inside_a_file(out: Path) -> None:
    out.parent.write_text("a file")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_bertsim, "holds an adrecall bertsim"),
        (_legacy_bertsim, "holds an adrecall bertsim"),
        (_model, r"holds files adrecall did not write \(config.json, model.safetensors\)"),
        (
            _index_and_notes,
            r"holds an adrecall index and also files adrecall did not write \(notes.txt\)",
        ),
        (_file, "is a file; give a folder"),
        (_inside_a_file, "is a file, not a folder"),
    ],
)
def test_out_that_is_not_an_index_is_refused_in_one_line_before_the_model_loads(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    ads = _ads(tmp_path, 12)
    (tmp_path / "work").mkdir()
    out = tmp_path / "work" / "x" / "idx" if make is _inside_a_file else tmp_path / "work" / "x"
    make(out)
    before = {p: p.read_bytes() for p in (tmp_path / "work").rglob("*") if p.is_file()}
    monkeypatch.setattr(build_job, "Encoder", _NoModel)
    assert main(["build", "--ads", str(ads), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("adrecall build: error: --out")
    assert re.search(message, error), error
    after = {p: p.read_bytes() for p in (tmp_path / "work").rglob("*") if p.is_file()}
    assert after == before, "a refused build leaves everything as it was"


def test_out_that_changes_during_the_build_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "idx"
    real_embed = build_job.embed_chunk

    def user_writes_into_out(chunk, encoder, batch_size):  # type: ignore[no-untyped-def]
        out.mkdir(exist_ok=True)
        (out / "notes.txt").write_text("keep me")
        return real_embed(chunk, encoder, batch_size)

    monkeypatch.setattr(build_job, "embed_chunk", user_writes_into_out)
    with pytest.raises(ValueError, match=r"holds files adrecall did not write \(notes.txt\)"):
        _build(_ads(tmp_path, 12), out)
    assert os.listdir(out) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ads-12.csv", "idx", "idx.partial"]


def test_folder_holding_out_that_cannot_be_written_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``out`` itself is writable, the folder it sits in is not (a probe refused there, so
    that this runs as root too; the test below uses real permission bits)."""
    out = tmp_path / "work" / "idx"
    out.parent.mkdir()
    _build(_ads(tmp_path, 12), out)
    real_probe = tempfile.TemporaryFile

    def probe(*args, dir=None, **kwargs):  # type: ignore[no-untyped-def]
        if dir is not None and Path(dir) == out.parent:
            raise PermissionError(13, "Permission denied", str(dir))
        return real_probe(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", probe)
    monkeypatch.setattr(build_job, "Encoder", _NoModel)
    with pytest.raises(ValueError, match=r"cannot write in '.*work' \(Permission denied\), where"):
        build_index(_ads(tmp_path, 12), out, progress=False)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
@pytest.mark.parametrize("locked", ["out", "parent"])
def test_unwritable_out_or_parent_is_refused_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locked: str
) -> None:
    out = tmp_path / "work" / "idx"
    out.parent.mkdir()
    _build(_ads(tmp_path, 12), out)
    folder = out if locked == "out" else out.parent
    folder.chmod(0o555)
    monkeypatch.setattr(build_job, "Encoder", _NoModel)
    try:
        with pytest.raises(ValueError, match="cannot write in"):
            build_index(_ads(tmp_path, 12), out, progress=False)
    finally:
        folder.chmod(0o755)


def test_manifest_records_its_kind_and_older_manifests_still_load(tmp_path: Path) -> None:
    out = tmp_path / "idx"
    _build(_ads(tmp_path, 12), out)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["kind"] == "index"
    del manifest["kind"]
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert _loaded_count(out) == 12
    (out / MANIFEST_FILE).write_text(json.dumps({**manifest, "kind": "bertsim"}))
    with pytest.raises(IndexFormatError, match="holds an adrecall bertsim, not an index"):
        Retriever.load(out, model=HashEncoder())


def test_symlinked_out_keeps_pointing_at_the_new_index(tmp_path: Path) -> None:
    target = tmp_path / "idx-v1"
    _build(_ads(tmp_path, 12), target)
    link = tmp_path / "idx"
    link.symlink_to(target, target_is_directory=True)
    _build(_ads(tmp_path, 20), link)
    assert link.is_symlink() and _loaded_count(link) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ads-12.csv",
        "ads-20.csv",
        "idx",
        "idx-v1",
    ]


def test_leftovers_of_killed_builds_go_and_lookalikes_stay(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    ours = {
        ".idx.tmp-0123abcd": ["index.faiss"],  # a staged index cut short
        ".idx.old-89abcdef": ["manifest.json", "ads.parquet"],  # an old index half deleted
        ".idx.partial-00112233": ["state.json", "shard-000000.npy"],  # a checkpoint half removed
        ".idx.partial-44556677": [],  # a checkpoint being created
    }
    lookalikes = {
        ".idx.tmp-aaaaaaaa": ["index.faiss", "notes.txt"],
        ".idx.partial-bbbbbbbb": ["shard-000000.npy"],
        ".idx.tmp-notours": ["index.faiss"],
        ".idx.tmp-cccccccc.bak": [],
    }
    for name, files in {**ours, **lookalikes}.items():
        (work / name).mkdir()
        for file in files:
            (work / name / file).write_text("x")
    _build(_ads(tmp_path, 12), work / "idx")
    assert sorted(p.name for p in work.iterdir()) == sorted(["idx", *lookalikes])
    assert all(
        sorted(os.listdir(work / name)) == sorted(files) for name, files in lookalikes.items()
    )


def test_old_index_that_cannot_be_deleted_only_warns_and_goes_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "idx"
    _build(_ads(tmp_path, 12), out)

    def refuse(folder: Path, last: str | None = None) -> None:
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(folder_swap, "remove_folder", refuse)
    with pytest.warns(UserWarning, match="could not delete .* the next build removes it"):
        _build(_ads(tmp_path, 20), out)
    assert _loaded_count(out) == 20
    monkeypatch.undo()
    _build(_ads(tmp_path, 20), out)
    assert sorted(os.listdir(tmp_path)) == ["ads-12.csv", "ads-20.csv", "idx"]


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EXDEV])
def test_exchange_the_file_system_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """EINVAL (no RENAME_EXCHANGE on this file system) falls back to two renames; any other
    error stops the build with the old index in place."""
    out = tmp_path / "idx"
    _build(_ads(tmp_path, 12), out)

    def refuses(*args: object) -> int:
        ctypes.set_errno(code)
        return -1

    monkeypatch.setattr(folder_swap, "_RENAMEAT2", refuses)
    if code == errno.EINVAL:
        _build(_ads(tmp_path, 20), out)
        assert _loaded_count(out) == 20
    else:
        with pytest.raises(OSError, match="Invalid cross-device link"):
            _build(_ads(tmp_path, 20), out)
        assert _loaded_count(out) == 12


# ---------------------------------------------------------------- killed between any two steps
_CHILD = """
import sys
from index_build.build_job import build_index
from retrieval import folder_swap
from tests.hash_encoder import HashEncoder
if sys.argv[3] == "two-renames":
    folder_swap._RENAMEAT2 = None
build_index(sys.argv[1], sys.argv[2], model=HashEncoder(), chunk_rows=10, resume=True,
            progress=False)
"""


def _killed_build(ads: Path, out: Path, step: int, swap: str) -> str | None:
    """Run a build in a subprocess killed after file-system ``step``: the step's description,
    or ``None`` when the build finished first."""
    env = {**os.environ, KILL_AT_STEP_ENV: str(step)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ads), str(out), swap],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 0:
        return None
    assert done.returncode == KILLED_STATUS, done.stderr
    return done.stderr.strip().splitlines()[-1]


def _kill_at_every_step(tmp_path: Path, swap: str, first_step: int = 1) -> list[str]:
    old_ads, new_ads = _ads(tmp_path, 12), _ads(tmp_path, 20)
    pristine = tmp_path / "pristine"
    _build(old_ads, pristine)
    work = tmp_path / "work"
    out = work / "idx"
    steps: list[str] = []
    swapped = False
    for step in range(first_step, 200):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        shutil.copytree(pristine, out)
        killed_at = _killed_build(new_ads, out, step, swap)
        if killed_at is None:
            break
        steps.append(killed_at)
        if swap == "two-renames" and not out.exists():
            clean_up_leftovers(out)  # what the next build does first: put the old back
        count = _loaded_count(out)  # the old index or the new one, complete either way
        assert count in (12, 20), killed_at
        assert not (swapped and count == 12), f"the old index came back after {killed_at}"
        swapped = count == 20
        if any(f"{out.name}.partial to" in s for s in steps):  # the checkpoint was set aside
            assert not (work / f"{out.name}.partial").exists(), f"checkpoint left: {killed_at}"
        _build(new_ads, out, resume=True)
        assert os.listdir(work) == ["idx"], f"leftovers after {killed_at}: {os.listdir(work)}"
        assert _loaded_count(out) == 20
    else:
        pytest.fail("the build never finished")
    return steps


@pytest.mark.slow
def test_build_killed_at_any_step_leaves_a_loadable_index_and_the_next_build_cleans_up(
    tmp_path: Path,
) -> None:
    steps = _kill_at_every_step(tmp_path, "exchange")
    swap = next(i for i, s in enumerate(steps) if "exchanged" in s)
    # the checkpoint goes aside in the very next step, before the old index's files go
    assert "idx.partial to" in steps[swap + 1], steps[swap:swap + 3]
    assert len(steps) > 25, steps  # checkpoint, 2 chunks of shards, staging, swap, removals


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="elsewhere two renames are the only swap")
def test_two_rename_fallback_killed_in_its_gap_is_put_back_by_the_next_build(
    tmp_path: Path,
) -> None:
    """Where renameat2 is missing: a kill between the two renames leaves no index until the
    next build restores the old one. Killed only from the staging on, to keep the test short."""
    steps = _kill_at_every_step(tmp_path, "two-renames", first_step=16)
    assert steps[0].startswith(f"{KILL_AT_STEP_ENV}: killed after step 16: created"), steps[0]
    assert any(".idx.old-" in s for s in steps), steps


def test_out_inside_the_model_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An index inside its own model folder would change the model's weight hash (whitening.npz
    is hashed as weights), leaving an index that can never be searched."""
    from encoder_training.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    ads = _ads(tmp_path, 12)
    capsys.readouterr()  # the tiny model's own save messages
    assert main(["build", "--ads", str(ads), "--model", str(model), "--out",
                 str(model / "idx"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "sits inside the input" in error, error
    assert not (model / "idx").exists()
