"""What each realism effect costs a trace extraction with perfect footprints.

Usage::

    python benchmarks/realism_costs.py [--small]

The ladder's full chain (rung 6: 200 × 200 µm at 1 µm/px, 20 s at 20 fps, seed 1) with
one default vessel layer, then with each effect added alone. For every variant: the
median Pearson r, over the cells detectable and in the field in the first variant, between the ROI trace of the movie
under each true footprint (``footprint_roi_trace`` of ``A_observed``) and the true
calcium ``C``. A lower r is what the effect costs a pipeline that found every cell
exactly. Dropped frames change no r when the truth is cut alike (they cost timing, not
traces), so they are left out.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def median_trace_r(spec, keep=None) -> tuple[float, np.ndarray]:
    """Median r over the cells ``keep`` (default: this recording's detectable in-field
    cells; every variant places the same cells, so the baseline's set is reused)."""
    from minisim import simulate
    from minisim.metrics import footprint_roi_trace

    ds = simulate(spec).dataset.compute()
    if keep is None:
        keep = ds["detectable"].values & ds["in_fov"].values
    traces = np.asarray(footprint_roi_trace(ds["observed"].values.astype(float),
                                            ds["A_observed"].values[keep]))  # fmt: skip
    truth = ds["C"].values[keep].astype(float)
    r = [np.corrcoef(a, b)[0, 1] for a, b in zip(traces, truth, strict=True) if b.std() > 0]
    return float(np.median(r)), keep


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    from graphs._common import rung_spec
    from minisim import (
        Acquisition,
        ImageSensor,
        Spec,
        SpecWarning,
        Vasculature,
        VesselDilation,  # fmt: skip
        VesselLayer,
    )

    warnings.simplefilter("ignore", SpecWarning)
    base = rung_spec(6, args.small)
    vessels = Vasculature(enabled=True, layers=[VesselLayer()])
    breathing = Vasculature(enabled=True, layers=[VesselLayer()],
                            dilation=VesselDilation(neurovascular_gain=0.3,
                                                    vasomotion_amplitude=0.1))  # fmt: skip
    acq = base.acquisition
    flawed = ImageSensor(**(acq.image_sensor.model_dump() | dict(
        black_level_adu=10.0, dark_current_e_per_s=100.0, dsnu_e=3.0, prnu=0.02,
        hot_pixel_fraction=0.001, row_noise_e=3.0)))  # fmt: skip
    real_acq = Acquisition(**(acq.model_dump() | {"image_sensor": flawed}))
    variants = {
        "rung 6 + still vessels": Spec(acquisition=acq, seed=base.seed,
                                       steps=[*base.steps, vessels]),
        "+ real CMOS sensor": Spec(acquisition=real_acq, seed=base.seed,
                                   steps=[*base.steps, vessels]),
        "+ breathing vessels": Spec(acquisition=acq, seed=base.seed,
                                    steps=[*base.steps, breathing]),
    }  # fmt: skip
    keep = None
    for name, spec in variants.items():
        r, keep = median_trace_r(spec, keep)
        print(f"{name:28s} median trace r = {r:.3f} over {int(keep.sum())} cells", flush=True)


if __name__ == "__main__":
    main()
