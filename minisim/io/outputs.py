"""Output paths that never destroy what is not ours, and files that appear only when whole.

The rule every writer follows: a path that does not exist (or is an empty folder) may be
written; a path holding one of minisim's own outputs may be replaced; anything else (a
folder of the user's files, a foreign file, another program's Zarr store) is refused with
an :class:`OutputPathError`, and left untouched.

Files are written under a sibling temporary name and renamed onto the target only once
complete (``os.replace`` is atomic on a POSIX filesystem), so a failed or killed write
leaves either the old file or nothing, never a truncated file that looks whole. Stale
temporaries of earlier killed writes are removed by the next write of the same path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

#: Infix of the sibling temporary names (``.<name>.minisim-partial-<id>``).
PARTIAL_INFIX = ".minisim-partial-"
#: Infix of a replaced store while a new one takes its place (``.<name>.minisim-old-<id>``).
OLD_INFIX = ".minisim-old-"


class OutputPathError(FileExistsError):
    """The output path holds something minisim did not write; nothing was changed."""


def is_url(path) -> bool:
    """Is ``path`` an fsspec URL (``s3://``, ``memory://``, ``file://``, ...)?"""
    return isinstance(path, str) and "://" in path


def local_path(path) -> Path | None:
    """The local filesystem path of ``path`` (``file://`` URLs included), or None for a
    remote URL."""
    if isinstance(path, os.PathLike):
        return Path(path)
    if isinstance(path, str):
        if path.startswith("file://"):
            return Path(path[len("file://") :])
        if not is_url(path):
            return Path(path)
    return None


def join(root, name: str):
    """``root/name`` for a local folder (a Path) or an fsspec URL (a string)."""
    local = local_path(root)
    if local is not None:
        return local / name
    return f"{str(root).rstrip('/')}/{name}"


def refuse(path, reason: str, fix: str) -> OutputPathError:
    """The one-line refusal every writer raises."""
    return OutputPathError(f"refusing to write {path}: {reason}; it was left untouched ({fix})")


def check_file_target(path: Path, *, is_ours: Callable[[Path], bool], what: str) -> None:
    """Raise unless ``path`` is absent or a file that ``is_ours`` recognises."""
    if path.is_dir():
        raise refuse(path, "it is a folder", f"choose a {what} file name")
    if path.exists() and not is_ours(path):
        raise refuse(
            path, f"it exists and is not a {what} written by minisim", "choose another path"
        )


def sibling(path: Path, infix: str) -> Path:
    """A unique hidden name beside ``path``."""
    return path.with_name(f".{path.name}{infix}{uuid.uuid4().hex[:12]}")


def remove_stale_siblings(path: Path) -> None:
    """Delete temporaries that earlier killed writes of ``path`` left beside it."""
    if not path.parent.is_dir():
        return
    for stale in path.parent.glob(f".{_glob_escape(path.name)}{PARTIAL_INFIX}*"):
        remove_path(stale)


def remove_path(path: Path) -> None:
    """Delete a file or folder that minisim itself created."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path, *, is_ours: Callable[[Path], bool], what: str) -> Iterator[Path]:
    """Write a file under a temporary sibling name; move it onto ``path`` only when whole.

    Yields the temporary path to write. The target is checked before anything is written:
    it must be absent or a ``what`` that ``is_ours`` recognises. If the body raises, the
    temporary is deleted and the target is left exactly as it was.
    """
    path = Path(path)
    check_file_target(path, is_ours=is_ours, what=what)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    partial = sibling(path, PARTIAL_INFIX)
    try:
        yield partial
        if not partial.exists():
            raise RuntimeError(f"the {what} writer produced no file at {partial}")
        os.replace(partial, path)
    except BaseException:
        remove_path(partial)
        raise


def _glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)
