"""ImageJ 1.x itself opens the exported TIFF stack and the default AVI (slow: needs Java).

Run with ``PYTHONPATH=$PWD python -m pytest -q -m slow tests/test_export_imagej.py`` on a
machine with Debian's ``imagej`` package (``apt-get install imagej``; it brings Java and
``/usr/share/java/ij.jar``) or with ``MINISIM_IJ_JAR`` naming an ``ij.jar``. The check uses
ImageJ's own readers (``ij.io.Opener`` for TIFF, ``ij.plugin.AVI_Reader`` for AVI) through a
tiny Java program, so no display is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from minisim import simulate

from .test_export import full_chain

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::minisim.SpecWarning")]

IJ_JAR = Path(os.environ.get("MINISIM_IJ_JAR", "/usr/share/java/ij.jar"))
CHECK = Path(__file__).parent / "imagej" / "OpenCheck.java"


def run_imagej(path: Path) -> subprocess.CompletedProcess:
    if shutil.which("java") is None or not IJ_JAR.exists():
        pytest.skip("needs Java and ImageJ's ij.jar (apt-get install imagej)")
    return subprocess.run(
        ["java", "-Djava.awt.headless=true", "-cp", str(IJ_JAR), str(CHECK), str(path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def imagej_reads(path: Path) -> tuple[dict, list[tuple[int, int]]]:
    out = run_imagej(path)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines and not lines[0].startswith("ERROR"), (
        out.stdout + out.stderr
    )
    header = dict(item.split("=", 1) for item in lines[0].split())
    frames = []
    for line in lines[1:]:
        _, _, total, pixel = line.split()
        frames.append((int(total.split("=")[1]), int(pixel.split("=")[1])))
    return header, frames


@pytest.fixture(scope="module")
def movie_and_rec():
    rec = simulate(full_chain(), chunks=7)
    return rec.observed.values, rec


def expected(movie):
    return [(int(f.sum()), int(f[3, 7])) for f in movie]


def test_imagej_opens_the_tiff_with_its_calibration(movie_and_rec, tmp_path):
    movie, rec = movie_and_rec
    header, frames = imagej_reads(rec.to_tiff(tmp_path / "rec.tif", progress=False))
    assert (int(header["width"]), int(header["height"]), int(header["slices"])) == (32, 24, 80)
    assert header["bitdepth"] == "8" and header["unit"] == "µm"
    assert float(header["pixelwidth"]) == pytest.approx(2.0)
    assert float(header["frameinterval"]) == pytest.approx(0.05)
    assert frames == expected(movie)


def test_imagej_opens_the_default_avi(movie_and_rec, tmp_path):
    movie, rec = movie_and_rec
    header, frames = imagej_reads(rec.write_video(tmp_path / "rec.avi", progress=False))
    assert (int(header["width"]), int(header["height"]), int(header["slices"])) == (32, 24, 80)
    assert header["bitdepth"] == "8"
    assert frames == expected(movie)  # same pixels, not flipped


def test_imagej_cannot_open_ffv1(movie_and_rec, tmp_path):
    """Why the default changed: FFV1 is lossless but ImageJ's AVI reader refuses it."""
    _, rec = movie_and_rec
    path = rec.write_video(tmp_path / "rec.avi", codec="ffv1", progress=False)
    assert run_imagej(path).stdout.startswith("ERROR")
