"""update and compact killed at any step leave the old index or the new one, whole; readers in
other processes keep serving the old index while an update or compaction swaps in the new."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from index_build.build_job import build_index
from index_build.compaction import compact_index
from index_build.index_update import update_index
from retrieval.folder_swap import KILL_AT_STEP_ENV, KILLED_STATUS
from retrieval.retriever import Retriever
from tests.conftest import write_table
from tests.hash_encoder import HashEncoder
from tests.test_index_updates import assert_serves_exactly

REPO = Path(__file__).resolve().parents[1]
_CHILD = """
import sys
from index_build.compaction import compact_index
from index_build.index_update import update_index
from tests.hash_encoder import HashEncoder
command, out = sys.argv[1], sys.argv[2]
if command == "update":
    update_index(out, ads=sys.argv[3], delete=sys.argv[4], model=HashEncoder(), progress=False)
else:
    compact_index(out, progress=False)
"""


def _tables(tmp_path: Path) -> dict[str, Path]:
    first = pd.DataFrame({"ad_id": [f"a{i:02d}" for i in range(60)],
                          "text": [f"ad {i} offer {i % 7}" for i in range(60)]})
    changed = pd.DataFrame({"ad_id": ["a01", "a02", "a03", "n1", "n2", "n3", "n4"],
                            "text": ["changed 1", "changed 2", "changed 3", "new one",
                                     "new two", "new three", "new four"]})
    doomed = tmp_path / "delete.txt"
    doomed.write_text("a10\na11\na12\na13\na14\n")
    return {"first": write_table(first, tmp_path / "first.csv"),
            "update": write_table(changed, tmp_path / "update.csv"), "delete": doomed}


def _ads(out: Path) -> dict[str, str]:
    """What the index at ``out`` serves, checked whole (see ``assert_serves_exactly``)."""
    retriever = Retriever.load(out, model=HashEncoder())
    ads = dict(zip(retriever.ads.column("ad_id").to_pylist(),
                   retriever.ads.column("text").to_pylist()))
    assert_serves_exactly(retriever, ads, retriever.manifest.index_type)
    if retriever.lexical is not None:
        assert len(retriever.lexical) == len(ads)
        hit = retriever.search(next(iter(ads.values())), k=1, mode="lexical")[0]
        assert hit.ad_id == next(iter(ads)), "lexical rows follow the ads table"
    return ads


def _killed(args: list[str], step: int) -> str | None:
    """Run ``args`` in a child killed after file-system ``step``: that step, or ``None`` when
    the child finished first."""
    done = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], cwd=REPO,
                          env={**os.environ, KILL_AT_STEP_ENV: str(step)}, capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode == 0:
        return None
    assert done.returncode == KILLED_STATUS, done.stderr
    return done.stderr.strip().splitlines()[-1]


def _kill_at_every_step(tmp_path: Path, pristine: Path, args: list[object],
                        finish: object) -> list[str]:
    """Kill ``args`` after each step in turn on a copy of ``pristine``; after each kill the
    index serves the old ads or the new ones, whole, and ``finish()`` (the command run again)
    reaches the new state and leaves nothing behind. Returns the steps killed at."""
    old = _ads(pristine)
    work = tmp_path / "work"
    out = work / "idx"
    new: dict[str, str] | None = None
    steps: list[str] = []
    for step in range(1, 100):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        shutil.copytree(pristine, out)
        killed_at = _killed([args[0], out, *args[1:]], step)
        if killed_at is None:
            break
        steps.append(killed_at)
        served = _ads(out)
        finish(out)  # type: ignore[operator]
        new = new or _ads(out)
        assert served in (old, new), f"a mix of old and new after {killed_at}"
        assert _ads(out) == new and os.listdir(work) == ["idx"], killed_at
    else:
        pytest.fail("the command never finished")
    return steps


@pytest.mark.slow
@pytest.mark.parametrize(("index_type", "options"), [
    ("flat", {"lexical": True, "whiten": True}), ("hnsw", {}), ("ivf", {"lexical": True}),
])
def test_update_killed_at_any_step_leaves_the_old_or_the_new_index(
    tmp_path: Path, index_type: str, options: dict[str, object]
) -> None:
    tables = _tables(tmp_path)
    pristine = tmp_path / "pristine"
    build_index(tables["first"], pristine, model=HashEncoder(), index_type=index_type,
                progress=False, **options)

    def finish(out: Path) -> None:
        update_index(out, ads=tables["update"], delete=tables["delete"], model=HashEncoder(),
                     progress=False)

    steps = _kill_at_every_step(tmp_path, pristine,
                                ["update", tables["update"], tables["delete"]], finish)
    assert any("exchanged" in s for s in steps) and any("wrote" in s and "manifest" in s
                                                        for s in steps), steps


@pytest.mark.slow
def test_compact_killed_at_any_step_leaves_the_old_or_the_new_index(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    pristine = tmp_path / "pristine"
    build_index(tables["first"], pristine, model=HashEncoder(), index_type="hnsw",
                progress=False, lexical=True)
    update_index(pristine, ads=tables["update"], delete=tables["delete"], model=HashEncoder(),
                 progress=False)
    assert Retriever.load(pristine, model=HashEncoder()).manifest.tombstones == 8
    steps = _kill_at_every_step(tmp_path, pristine, ["compact"],
                                lambda out: compact_index(out, progress=False))
    assert any("tombstones" in s for s in steps), steps  # killed after the old list's removal
    assert Retriever.load(tmp_path / "work" / "idx", model=HashEncoder()).manifest.tombstones == 0


@pytest.mark.slow
def test_build_with_tuning_killed_at_any_step_leaves_a_loadable_index(tmp_path: Path) -> None:
    """The tuned build (ivf, target recall) killed at every step: no index or a whole one."""
    ads = write_table(pd.DataFrame({"ad_id": [f"a{i}" for i in range(150)],
                                    "text": [f"ad {i} offer {i % 9}" for i in range(150)]}),
                      tmp_path / "ads.csv")
    child = ("import sys; from index_build.build_job import build_index; "
             "from tests.hash_encoder import HashEncoder; build_index(sys.argv[1], sys.argv[2], "
             "model=HashEncoder(), index_type='ivf', target_recall=0.9, chunk_rows=100, "
             "resume=True, progress=False)")
    out = tmp_path / "idx"
    for step in range(1, 100):
        shutil.rmtree(out, ignore_errors=True)
        done = subprocess.run([sys.executable, "-c", child, str(ads), str(out)], cwd=REPO,
                              env={**os.environ, KILL_AT_STEP_ENV: str(step)},
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode == 0:
            break
        assert done.returncode == KILLED_STATUS, done.stderr
        if out.exists():
            assert len(_ads(out)) == 150
        build_index(ads, out, model=HashEncoder(), index_type="ivf", target_recall=0.9,
                    chunk_rows=100, resume=True, progress=False)
        assert len(_ads(out)) == 150 and sorted(os.listdir(tmp_path)) == ["ads.csv", "idx"]
    tuning = Retriever.load(out, model=HashEncoder()).manifest.tuning
    assert tuning is not None and tuning["reached"] and step > 15


@pytest.mark.slow
def test_update_killed_by_sigkill_at_random_moments(tmp_path: Path) -> None:
    """Real SIGKILLs, at moments spread over an update of 3,000 ads: old or new, never a mix."""
    tables = _tables(tmp_path)
    many = pd.DataFrame({"ad_id": [f"m{i}" for i in range(3000)],
                         "text": [f"many {i} offer {i % 11}" for i in range(3000)]})
    big = write_table(many, tmp_path / "many.csv")
    pristine = tmp_path / "pristine"
    build_index(tables["first"], pristine, model=HashEncoder(), index_type="hnsw",
                progress=False, lexical=True)
    old = _ads(pristine)
    out = tmp_path / "work" / "idx"
    outcomes = []
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0):
        shutil.rmtree(out.parent, ignore_errors=True)
        out.parent.mkdir()
        shutil.copytree(pristine, out)
        child = subprocess.Popen([sys.executable, "-c", _CHILD, "update", str(out), str(big),
                                  str(tables["delete"])], cwd=REPO)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        served = _ads(out)
        new = {**{k: v for k, v in old.items() if k not in {"a10", "a11", "a12", "a13", "a14"}},
               **dict(zip(many["ad_id"], many["text"]))}
        assert served in (old, new), f"a mix after {delay} s"
        outcomes.append(served == new)
    assert outcomes[-1] or not outcomes[0], outcomes  # sanity: later kills do not go backwards


_READER = """
import json, sys
from retrieval.retriever import Retriever
from tests.hash_encoder import HashEncoder
retriever = Retriever.load(sys.argv[1], model=HashEncoder(), mmap=sys.argv[2] == "mmap")
queries = json.loads(sys.argv[3])
def answer():
    found = retriever.search(queries, k=5)
    return [[h.ad_id for h in hits] for hits in found]
print(json.dumps(answer()), flush=True)
sys.stdin.readline()
print(json.dumps(answer()), flush=True)
"""


@pytest.mark.parametrize("loading", ["read", "mmap"])
def test_reader_in_another_process_keeps_serving_the_old_index(
    tmp_path: Path, loading: str
) -> None:
    tables = _tables(tmp_path)
    out = tmp_path / "idx"
    build_index(tables["first"], out, model=HashEncoder(), index_type="hnsw", progress=False,
                lexical=True)
    queries = ["ad 10 offer 3", "changed 1", "ad 40 offer 5"]
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(out), loading,
                               json.dumps(queries)], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdin is not None
    before = json.loads(reader.stdout.readline())
    assert before[0][0] == "a10"
    update_index(out, ads=tables["update"], delete=tables["delete"], model=HashEncoder(),
                 progress=False)
    compact_index(out, progress=False)  # the reader's files are now deleted, twice over
    reader.stdin.write("go\n")
    reader.stdin.flush()
    after = json.loads(reader.stdout.readline())
    assert reader.wait(timeout=60) == 0
    assert after == before, "the reader still answers from the index it loaded"
    fresh = [[h.ad_id for h in hits]
             for hits in Retriever.load(out, model=HashEncoder()).search(queries, k=5)]
    assert fresh[1][0] == "a01" and before[1][0] != "a01" and "a10" not in fresh[0]
