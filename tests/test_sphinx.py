"""The documentation site builds with warnings treated as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_sphinx_build_is_clean(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-q",
            str(DOCS),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for page in ("index", "quickstart", "ladder", "reference/api", "reference/dataset"):
        assert (tmp_path / f"{page}.html").exists(), page
    assert (tmp_path / "_images" / "rung1_cells_on_black.png").exists()
