"""The command line: the demo runs and bad input exits 2 with a message."""

from __future__ import annotations

import subprocess
import sys

from minisim.cli import main


def test_demo_prints_a_summary(capsys):
    assert main(["demo", "--duration", "2", "--px", "48", "--scheduler", "sync"]) == 0
    out = capsys.readouterr().out
    assert "40 frames of 48×48 px" in out and "cells" in out and "spikes" in out


def test_bad_input_exits_2_and_names_the_field(capsys):
    assert main(["demo", "--duration", "-1"]) == 2
    assert "duration_s" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "minisim.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "minisim demo" in out
