"""The bundled notebooks: shipped as package data, in sync with their generator, listed and
copied by the command line without ever overwriting a user's file, and each one executes
headless (nbclient, a real kernel) in its small mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minisim.cli import main
from minisim.explore import copy_notebooks, notebook_paths

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["anatomy", "demixing", "metrics", "studio"]


def test_the_notebooks_are_bundled_with_the_package():
    paths = notebook_paths()
    assert sorted(paths) == NAMES
    for path in paths.values():
        assert path.is_file() and path.parent.name == "notebooks"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"notebooks/*.ipynb"' in pyproject  # installed with the package


def test_shipped_notebooks_match_their_generator():
    pytest.importorskip("nbformat")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "build_notebooks.py"), "--check"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_lists_and_copies_without_overwriting(tmp_path, capsys):
    assert main(["notebooks", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in NAMES)
    target = tmp_path / "mine"
    assert main(["notebooks", "copy", str(target)]) == 0
    assert "copied 4 notebook(s)" in capsys.readouterr().out
    assert sorted(p.name for p in target.iterdir()) == [f"{n}.ipynb" for n in NAMES]
    edited = target / "anatomy.ipynb"
    edited.write_text("my own edits")
    assert main(["notebooks", "copy", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"skipped {edited}" in out and "copied 0 notebook(s)" in out
    assert edited.read_text() == "my own edits"
    assert not [p for p in target.iterdir() if p.name.startswith(".minisim-")]  # no leftovers


def test_copy_refuses_a_file_as_directory_and_unknown_names(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["notebooks", "copy", str(blocker)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert blocker.read_text() == "x"
    with pytest.raises(ValueError, match="no bundled notebook"):
        copy_notebooks(tmp_path / "d", names=["nope"])
    assert main(["notebooks", "copy"]) == 2


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_headless(name, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("ipywidgets")
    if name == "studio":
        pytest.importorskip("panel")
    env_before = os.environ.get("MINISIM_NOTEBOOK_SMALL")
    os.environ["MINISIM_NOTEBOOK_SMALL"] = "1"  # the kernel inherits the environment
    try:
        # nbclient sometimes never sees the reply to a cell that displays ipywidgets while
        # the kernel sits idle (jupyter/nbclient#312): a cell that times out is retried once
        # in a fresh kernel. A notebook that really fails raises CellExecutionError at once.
        for attempt in (1, 2):
            nb = nbformat.read(notebook_paths()[name], as_version=4)
            try:
                nbclient.NotebookClient(
                    nb, timeout=150, kernel_name="python3",
                    resources={"metadata": {"path": str(tmp_path)}},
                ).execute()  # fmt: skip
                break
            except nbclient.exceptions.CellTimeoutError:
                if attempt == 2:
                    raise
    finally:
        if env_before is None:
            os.environ.pop("MINISIM_NOTEBOOK_SMALL")
        else:
            os.environ["MINISIM_NOTEBOOK_SMALL"] = env_before
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert outputs, "the notebook showed nothing"
