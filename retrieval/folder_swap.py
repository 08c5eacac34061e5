"""Put a staged folder in place of another so that the path always names a complete folder.

A new version of a folder (an index) is written under a hidden sibling name, then swapped in.
On Linux with glibc ≥ 2.28 the swap is one ``renameat2(RENAME_EXCHANGE)`` call: the path names
the old folder until that call and the new one after it, never nothing, and the old folder is
left under the staged name, from where it is deleted. Where that call is missing (macOS,
Windows, older glibc) or the file system refuses it, the swap falls back, as a best effort, to
two renames: the old folder aside to ``.NAME.old-*``, then the staged one into place. A kill
between those two leaves nothing at the path until the next run puts the old folder back
(:func:`retrieval.index_store.clean_up_leftovers`).

Every hidden sibling is named ``.NAME.TAG-XXXXXXXX`` (8 hex digits), so the next run can find
what a killed run left behind; the caller decides which of them hold its marks and may go.

Test hook: with ``ADRECALL_KILL_AT_STEP=N`` in the environment the process exits at once
(status :data:`KILLED_STATUS`) after its N-th file-system step, as if killed there, so a test
can stop a build between any two steps and check what it left.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

STAGED = "tmp"
"""Tag of a staged folder (and, after an exchange, of the old one on its way out)."""
RETIRED = "old"
"""Tag of the old folder set aside by the two-rename fallback."""

KILL_AT_STEP_ENV = "ADRECALL_KILL_AT_STEP"
KILLED_STATUS = 86

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_steps_done = 0


def fs_step(what: str) -> None:
    """Count one file-system step as done; the test hook exits here when it is step N."""
    global _steps_done
    _steps_done += 1
    wanted = os.environ.get(KILL_AT_STEP_ENV)
    if wanted is not None and int(wanted) == _steps_done:
        sys.stderr.write(f"{KILL_AT_STEP_ENV}: killed after step {_steps_done}: {what}\n")
        sys.stderr.flush()
        os._exit(KILLED_STATUS)


def hidden_sibling(path: Path, tag: str) -> Path:
    """A new name beside ``path`` for a folder of ``tag``: ``.NAME.TAG-XXXXXXXX``."""
    return path.parent / f".{path.name}.{tag}-{uuid.uuid4().hex[:8]}"


def hidden_siblings(path: Path, tag: str) -> list[Path]:
    """The folders beside ``path`` named as :func:`hidden_sibling` names them (no symlinks)."""
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(tag)}-[0-9a-f]{{8}}")
    return sorted(
        p
        for p in path.parent.iterdir()
        if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
    )


def remove_folder(folder: Path, last: str | None = None) -> None:
    """Delete the files of ``folder`` one by one, ``last`` after all others, then the folder.

    A kill midway leaves a folder holding part of what it held (``last`` until the end), so the
    next run still knows it by the same marks.
    """
    for entry in sorted(folder.iterdir(), key=lambda p: (p.name == last, p.name)):
        entry.unlink()
        fs_step(f"removed {entry}")
    folder.rmdir()
    fs_step(f"removed {folder}")


def swap_into_place(
    staged: Path, path: Path, after_swap: Callable[[], None] | None = None
) -> None:
    """Move the complete folder ``staged`` to ``path`` and delete the folder it replaces.

    The files are flushed to disk first; see :func:`discard_folder` for the old folder.
    ``after_swap`` runs as soon as ``path`` holds the new folder, before the many steps of
    deleting the old one (a build sets its checkpoint aside there).
    """
    _fsync_folder(staged)
    if not path.exists():
        os.rename(staged, path)
        fs_step(f"renamed {staged} to {path}")
        _fsync(path.parent)
        if after_swap is not None:
            after_swap()
        return
    if _exchange(staged, path):
        fs_step(f"exchanged {staged} and {path}")
        retired = staged
    else:
        retired = hidden_sibling(path, RETIRED)
        os.rename(path, retired)
        fs_step(f"renamed {path} to {retired}")
        os.rename(staged, path)
        fs_step(f"renamed {staged} to {path}")
    _fsync(path.parent)
    if after_swap is not None:
        after_swap()
    discard_folder(retired)


def discard_folder(folder: Path, last: str | None = None) -> None:
    """:func:`remove_folder` once the new folder is in place: a failure only warns, since the
    next run removes what is left."""
    try:
        remove_folder(folder, last)
    except OSError as exc:
        warnings.warn(f"could not delete {folder} ({exc}); the next build removes it", stacklevel=2)


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):  # not glibc ≥ 2.28 (or not a POSIX libc)
        return None
    path, number = ctypes.c_char_p, ctypes.c_int
    function.argtypes = (number, path, number, path, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _load_renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Swap the entries ``a`` and ``b`` in one step; ``False`` where this system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # kernel or file system lacks it
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _fsync_folder(folder: Path) -> None:
    for file in folder.iterdir():
        _fsync(file)
    _fsync(folder)


def _fsync(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):  # Windows cannot open a folder to flush it
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
