"""Shared fixtures: small acquisitions at 1 µm/px so tests stay fast."""

from __future__ import annotations

import dask
import pytest

from minisim import Acquisition, ImageSensor, Optics


def small_acquisition(
    px: int = 64, duration_s: float = 4.0, fps: float = 20.0, **kw
) -> Acquisition:
    """A px × px field at 1 µm/px (8 µm pitch, 8× magnification)."""
    return Acquisition(
        fps=fps,
        duration_s=duration_s,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=px, n_px_width=px, pixel_pitch_um=8.0),
        **kw,
    )


def full_chain_steps(motion_um: float = 1.0) -> list:
    """Every built-in step, each doing something (vessels enabled, some motion)."""
    import minisim as ms

    return [ms.PlaceNeurons(), ms.CellActivity(), ms.Bleaching(), ms.CellOptics(),
            ms.Composite(), ms.Neuropil(), ms.Vasculature(enabled=True, layers=[ms.VesselLayer()]),
            ms.BrainMotion(motion_amplitude_um=motion_um), ms.IlluminationProfile(),
            ms.Vignette(), ms.Leakage(), ms.Sensor()]  # fmt: skip


@pytest.fixture
def ladder_acq() -> Acquisition:
    """The examples ladder's acquisition: 200 µm field at 1 µm/px, 20 s at 20 fps."""
    return Acquisition(
        fps=20.0,
        duration_s=20.0,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=200, n_px_width=200, pixel_pitch_um=8.0),
    )


class NothingComputes(dask.callbacks.Callback):
    """Fails loudly if any dask task runs while active."""

    def _start_state(self, dsk, state):
        raise AssertionError("a dask computation ran where nothing should compute")


@pytest.fixture
def no_compute():
    with NothingComputes():
        yield
