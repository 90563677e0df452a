"""Shared pieces of the figure scripts: the ladder's acquisition and rung specs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from minisim import (  # noqa: E402
    Acquisition,
    CellActivity,
    CellOptics,
    Composite,
    ImageSensor,
    Optics,
    PlaceNeurons,
    Spec,
)

#: The examples ladder's seed.
SEED = 1


def acquisition(small: bool = False) -> Acquisition:
    """The ladder's 200 µm field at 1 µm/px, 20 s at 20 fps (``small``: 64 µm, 2 s)."""
    px, duration_s = (64, 2.0) if small else (200, 20.0)
    return Acquisition(
        fps=20.0,
        duration_s=duration_s,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=px, n_px_width=px, pixel_pitch_um=8.0),
    )


def rung_spec(rung: int, small: bool = False) -> Spec:
    """The spec of ladder rung 1 (cells on black) or 2 (plus optics)."""
    steps = {
        1: [PlaceNeurons(), CellActivity(), Composite()],
        2: [PlaceNeurons(), CellActivity(), CellOptics(), Composite()],
    }[rung]
    return Spec(acquisition=acquisition(small), seed=SEED, steps=steps)


def save(fig: plt.Figure, out_dir: Path, name: str, small: bool) -> Path:
    """Write ``fig`` as ``out_dir/name`` (lower resolution when ``small``) and close it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, dpi=60 if small else 120)
    plt.close(fig)
    return path
