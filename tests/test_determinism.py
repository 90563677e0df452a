"""Byte-identical results whatever the chunking and whatever the scheduler."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minisim import (
    Bleaching,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    Leakage,
    Neuropil,
    PlaceNeurons,
    Sensor,
    Spec,
    Vasculature,
    VesselLayer,
    Vignette,
    simulate,
)
from minisim.engine import SCAN_BLOCK

from .conftest import small_acquisition

# Longer than one scan block, so carried state crosses block boundaries.
N_FRAMES = SCAN_BLOCK + 180
SPEC = Spec(
    acquisition=small_acquisition(px=24, duration_s=N_FRAMES / 20.0),
    seed=11,
    steps=[
        PlaceNeurons(density_per_mm3=60000.0, morphology="cytosolic"),
        CellActivity(),
        Bleaching(bleach_susceptibility=0.01),
        CellOptics(),
        Composite(),
        Neuropil(n_components=2),
        Vasculature(enabled=True, layers=[VesselLayer(root_radius_um=4.0, min_radius_um=1.0)]),
        IlluminationProfile(),
        Vignette(),
        Leakage(),
        BrainMotion(motion_amplitude_um=1.0, max_shift_um=3.0),
        Sensor(),  # "auto" focus then depends lazily on every trace's peak
    ],
)
CHECKED = (
    "observed",
    "C",
    "S",
    "A_planted",
    "A_observed",
    "centers_um",
    "amplitude",
    "observed_sigma_px",
    "detectable",
    "in_focus",
    "focal_depth_um",
    "shift_y",
    "shift_x",
    "neuropil_temporal",
    "neuropil_population",
    "vasculature_mask",
    "vessel_overlap_fraction",
    "bleaching",
)


def arrays(rec) -> dict[str, np.ndarray]:
    computed = rec.compute().dataset
    return {name: np.asarray(computed[name].values) for name in CHECKED}


def assert_identical(a: dict, b: dict) -> None:
    for name in CHECKED:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


@pytest.fixture(scope="module")
def reference():
    with dask.config.set(scheduler="sync"):
        return arrays(simulate(SPEC, chunks=-1))


def test_reference_is_not_trivial(reference):
    assert reference["observed"].max() > 0 and len(reference["C"]) >= 3


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_any_chunking_gives_identical_bytes(reference, sizes):
    # Cycle the drawn sizes until the frames are covered: irregular chunks are allowed.
    chunks, total, i = [], 0, 0
    while total < N_FRAMES:
        size = min(sizes[i % len(sizes)], N_FRAMES - total)
        chunks.append(size)
        total += size
        i += 1
    rec = simulate(SPEC, chunks={"frame": tuple(chunks)})
    assert rec.observed.chunks[0] == tuple(chunks)
    assert_identical(reference, arrays(rec))


def test_threads_and_processes_identical(reference):
    with dask.config.set(scheduler="threads", num_workers=2):
        assert_identical(reference, arrays(simulate(SPEC, chunks=64)))
    with dask.config.set(scheduler="processes", num_workers=2):
        assert_identical(reference, arrays(simulate(SPEC, chunks=100)))


def test_local_cluster_identical(reference):
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        assert_identical(reference, arrays(simulate(SPEC, chunks=97)))


def test_graph_keys_are_deterministic_and_each_scan_is_built_once():
    # Passing a dask array into dask.delayed copies its graph under random key names:
    # the scan chain behind the auto focus then ran once per copy.
    def keys(rec):
        arrays = [v.data for v in rec.dataset.variables.values() if hasattr(v.data, "dask")]
        return set().union(*(dict(a.__dask_graph__()).keys() for a in arrays))

    first, second = keys(simulate(SPEC)), keys(simulate(SPEC))
    assert first == second
    inits = sorted(str(k[0]) for k in first if isinstance(k, tuple) and str(k[0]).endswith("-init"))
    assert len(inits) == len({name.split("-")[0] for name in inits}), inits


#: sha256 (first 16 hex digits) of every checked variable of SPEC, computed once and
#: pinned: any change to the numbers a spec produces shows up here. Update it only for a
#: deliberate change of the physics or of the keyed streams (and say so in the
#: CHANGELOG), or when a new numpy changes a distribution's sampling algorithm. The same
#: digests hold on every CPU (tests/test_cpu_features.py checks it).
GOLDEN = {
    "observed": "4e40c668ecad081e",  # engine/poisson.py (PTRS: v from u's word, squeeze)
    "C": "bd2709952da2e6b2",
    "S": "dab0aa21898709a2",
    "A_planted": "e26d8e3490cb6180",
    "A_observed": "5d3eb28fe840fa18",  # engine/multiscale.py (grid-by-grid refinement)
    "centers_um": "bef7b47bdde5d587",
    "amplitude": "415d8f32dd29c8d4",
    "observed_sigma_px": "34d957b1fd161889",
    "detectable": "167cf7f0bf15f629",
    "in_focus": "9589688493eecb27",
    "focal_depth_um": "d6c244f8d09c35dc",
    "shift_y": "1dd3069246b24fc2",
    "shift_x": "1204d6bc9dd02094",
    "neuropil_temporal": "12e12dea9df151cc",
    "neuropil_population": "098ade8d59837a3b",
    "vasculature_mask": "2b1ac1e462d5af85",
    "vessel_overlap_fraction": "21ce4f4b2276f2bf",
    "bleaching": "02aab3f934e81899",
}


def test_golden_bytes_of_the_full_chain():
    import hashlib

    ds = simulate(SPEC).dataset.compute()
    digests = {
        name: hashlib.sha256(np.ascontiguousarray(ds[name].values).tobytes()).hexdigest()[:16]
        for name in CHECKED
    }
    changed = {name: digest for name, digest in digests.items() if GOLDEN[name] != digest}
    assert not changed, f"bytes changed for {sorted(changed)} (numpy {np.__version__})"
