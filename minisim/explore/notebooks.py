"""The notebooks bundled with the package: list them, copy them somewhere to run."""

from __future__ import annotations

import shutil
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
        try:
            # "x": create, never overwrite (no check-then-write race with the user's file).
            with open(available[name], "rb") as source, open(destination, "xb") as out:
                shutil.copyfileobj(source, out)
        except FileExistsError:
            skipped.append(destination)
            continue
        copied.append(destination)
    return copied, skipped
