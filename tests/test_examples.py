"""Every script in examples/ runs to completion at its small size, in a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    env = {**os.environ, "MINISIM_EXAMPLE_SMALL": "1", "MINISIM_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_documents_itself(script):
    source = script.read_text()
    assert source.lstrip().startswith('"""'), f"{script.name} needs a module docstring"
    assert "MINISIM_EXAMPLE_SMALL" in source, f"{script.name} must honour MINISIM_EXAMPLE_SMALL"
    assert 'if __name__ == "__main__":' in source, f"{script.name} needs a main guard"
