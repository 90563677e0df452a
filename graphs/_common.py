"""Shared pieces of the figure scripts: the ladder's acquisition and rung specs."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from minisim import (  # noqa: E402
    Acquisition,
    Bleaching,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    ImageSensor,
    Leakage,
    Neuropil,
    Optics,
    PlaceNeurons,
    Sensor,
    Spec,
    SpecWarning,
    Vignette,
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
    """The spec of ladder rung 1 to 6, exactly as the examples ladder writes it.

    1: cells on black; 2: plus optics; 3: rung 2 plus brain motion; 4: rung 2 plus
    neuropil; 5: rung 4 plus the static fields (illumination, vignette, leakage).
    Rungs 4 and 5 build on rung 2, not 3: the ladder leaves motion out of them.
    6: the full recording, rung 5 plus bleaching, brain motion and the sensor.
    """
    base = [PlaceNeurons(), CellActivity(), CellOptics(), Composite()]
    steps = {
        1: [PlaceNeurons(), CellActivity(), Composite()],
        2: base,
        3: [*base, BrainMotion()],
        4: [*base, Neuropil()],
        5: [*base, Neuropil(), IlluminationProfile(), Vignette(), Leakage()],
        6: [
            PlaceNeurons(),
            CellActivity(),
            Bleaching(),
            CellOptics(),
            Composite(),
            Neuropil(),
            BrainMotion(),
            IlluminationProfile(),
            Vignette(),
            Leakage(),
            Sensor(),
        ],
    }[rung]
    with warnings.catch_warnings():
        if small:  # the ladder's 10 µm motion is over 5% of the tiny 64 µm field: expected
            warnings.simplefilter("ignore", SpecWarning)
        return Spec(acquisition=acquisition(small), seed=SEED, steps=steps)


def save(fig: plt.Figure, out_dir: Path, name: str, small: bool) -> Path:
    """Write ``fig`` as ``out_dir/name`` (lower resolution when ``small``) and close it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, dpi=60 if small else 120)
    plt.close(fig)
    return path
