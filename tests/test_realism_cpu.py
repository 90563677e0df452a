"""The realism effects give the same bytes on every CPU: a chain with a real sensor,
breathing vessels, non-rigid brain motion and dropped frames hashes the same with numpy's AVX2/AVX-512 paths
(and the C library's FMA) switched off, in a fresh process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minisim import (
    Acquisition,
    BrainMotion,
    CellActivity,
    Composite,
    DroppedFrames,
    ImageSensor,
    Neuropil,
    Optics,
    PlaceNeurons,
    Sensor,
    Spec,
    Vasculature,
    VesselDilation,
    VesselLayer,
    simulate,
)

from .test_cpu_features import AVX2, _present_dispatch_targets

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the environment switches are Linux-specific"
)

REALISM = Spec(
    acquisition=Acquisition(
        fps=20.0,
        duration_s=2.0,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(
            n_px_height=32,
            n_px_width=32,
            pixel_pitch_um=8.0,
            bit_depth=12,
            black_level_adu=50.0,
            dark_current_e_per_s=100.0,
            dsnu_e=2.0,
            prnu=0.02,
            hot_pixel_fraction=0.01,
            row_noise_e=2.0,
        ),
    ),  # fmt: skip
    seed=5,
    steps=[
        PlaceNeurons(),
        CellActivity(),
        Composite(),
        Neuropil(),
        Vasculature(
            enabled=True,
            layers=[VesselLayer(root_radius_um=10.0)],
            dilation=VesselDilation(neurovascular_gain=0.3, vasomotion_amplitude=0.1),
        ),
        BrainMotion(
            motion_amplitude_um=1.0, max_shift_um=2.0, nonrigid_um=1.0, nonrigid_scale_um=12.0
        ),
        Sensor(),
        DroppedFrames(drop_probability=0.2, timestamp_jitter_s=0.002),
    ],  # fmt: skip
)

PROBE = """
import hashlib, json, warnings
warnings.simplefilter("ignore")
import numpy as np
from tests.test_realism_cpu import REALISM
from minisim import simulate
ds = simulate(REALISM, chunks=7).dataset.compute()
print(json.dumps({name: hashlib.sha256(np.ascontiguousarray(ds[name].values).tobytes())
                  .hexdigest() for name in sorted(ds.variables) if ds[name].dtype.kind not in "OU"}))
"""


def test_realism_is_identical_without_simd_extensions():
    disabled = _present_dispatch_targets(AVX2)
    env = {"NPY_DISABLE_CPU_FEATURES": " ".join(disabled),
           "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"}  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([root, *sys.path])}
    done = subprocess.run([sys.executable, "-c", PROBE], env=full_env, cwd=root,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    ds = simulate(REALISM, chunks=-1).dataset.compute()  # another chunking, too
    here = {name: hashlib.sha256(np.ascontiguousarray(ds[name].values).tobytes()).hexdigest()
            for name in sorted(ds.variables) if ds[name].dtype.kind not in "OU"}  # fmt: skip
    assert {"sensor_offset_adu", "row_offset_e", "vessel_dilation", "acquired_frame",
            "nonrigid_y", "nonrigid_x"} <= set(here)  # fmt: skip
    assert set(there) == set(here)
    changed = sorted(name for name in here if here[name] != there[name])
    assert not changed, f"bytes differ with {disabled} disabled: {changed}"
