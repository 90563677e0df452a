"""The notebooks bundled with the package: list them, copy them somewhere to run."""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

__all__ = ["copy_notebooks", "notebook_paths"]


def notebook_paths() -> dict[str, Path]:
    """The bundled notebooks by name (``"anatomy"`` → ``…/minisim/notebooks/anatomy.ipynb``)."""
    folder = resources.files("minisim") / "notebooks"
    return {
        Path(str(entry)).stem: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".ipynb")
    }


def copy_notebooks(directory, names=None) -> tuple[list[Path], list[Path]]:
    """Copy the bundled notebooks into ``directory`` (created if missing).

    A file that already exists there is never replaced: it is skipped and reported.

    Returns
    -------
    (copied, skipped) : lists of destination paths
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} exists and is not a directory: give a directory to copy into")
    target.mkdir(parents=True, exist_ok=True)
    available = notebook_paths()
    unknown = sorted(set(names or ()) - set(available))
    if unknown:
        raise ValueError(f"no bundled notebook {unknown[0]!r}: choose from {sorted(available)}")
    copied, skipped = [], []
    for name in names or sorted(available):
        destination = target / available[name].name
        if destination.exists():
            skipped.append(destination)
            continue
        # Atomic and never overwriting: a complete temporary copy is hard-linked into
        # place (which fails if the user created the file meanwhile), then unlinked.
        with tempfile.NamedTemporaryFile(dir=target, prefix=".minisim-", delete=False) as out:
            with open(available[name], "rb") as source:
                shutil.copyfileobj(source, out)
        try:
            os.link(out.name, destination)
        except FileExistsError:
            skipped.append(destination)
        else:
            copied.append(destination)
        finally:
            os.unlink(out.name)
    return copied, skipped
