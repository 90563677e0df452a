"""Zarr stores: round trip, safe completion, resume, cluster writes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

import minisim.steps.composite as composite_module
from minisim import (
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IncompleteStoreError,
    NeuronPopulation,
    Neuropil,
    PlaceNeurons,
    RecordingFormatWarning,
    Sensor,
    Spec,
    open_recording,
    simulate,
)

from .conftest import small_acquisition

SPEC = Spec(
    acquisition=small_acquisition(px=40, duration_s=4.0),
    seed=9,
    steps=[
        PlaceNeurons(),
        CellActivity(),
        CellOptics(),
        Composite(),
        Neuropil(),
        BrainMotion(motion_amplitude_um=1.0, max_shift_um=2.0),
        Sensor(),
    ],  # fmt: skip
)


def assert_same_dataset(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        x, y = a[name].values, b[name].values
        if x.dtype == object or y.dtype.kind in "OUT":
            assert x.tolist() == y.tolist(), name
            continue
        assert x.dtype == y.dtype, (name, x.dtype, y.dtype)
        assert x.tobytes() == y.tobytes(), name


def store_bytes(path) -> dict[str, bytes]:
    group = zarr.open_group(str(path), mode="r")
    return {name: np.asarray(group[name][...]).tobytes() for name in group.array_keys()}


def test_round_trip_is_exact_and_lazy(tmp_path):
    rec = simulate(SPEC, chunks=16)
    rec.to_zarr(tmp_path / "rec.zarr")
    back = open_recording(tmp_path / "rec.zarr")
    assert back.observed.chunks is not None  # lazy: dask-backed, nothing read yet
    memory = rec.compute()
    assert_same_dataset(memory.dataset, back.dataset)
    assert back.spec == SPEC
    assert back.ground_truth.detectable.dtype == bool
    assert back.ground_truth.focal_depth_um == memory.ground_truth.focal_depth_um
    assert np.array_equal(back.ground_truth.shifts.values, memory.ground_truth.shifts.values)


def test_plain_xarray_sees_labelled_dims_and_truth(tmp_path):
    simulate(SPEC).to_zarr(tmp_path / "rec.zarr")
    ds = xr.open_zarr(tmp_path / "rec.zarr")
    assert {"frame", "y", "x", "cell"} <= set(ds.dims)
    assert ds["observed"].dims == ("frame", "y", "x")
    for coord in ("time_s", "shift_y", "centers_um", "depth_um", "detectable", "frame"):
        assert coord in ds.coords
    assert ds.attrs["format_version"] == 2 and ds.attrs["minisim_complete"] is True
    assert ds["observed"].encoding["chunks"][0] == ds["observed"].chunks[0][0]


def test_empty_recording_round_trips(tmp_path):
    spec = Spec(acquisition=small_acquisition(px=24, duration_s=1.0),
                steps=[PlaceNeurons(populations=[NeuronPopulation(positions_um=[])]), CellActivity(), Composite()])  # fmt: skip
    rec = simulate(spec)
    rec.to_zarr(tmp_path / "empty.zarr")
    back = open_recording(tmp_path / "empty.zarr")
    assert back.ground_truth.n_units == 0 and back.ground_truth.A_planted.shape == (0, 24, 24)
    assert_same_dataset(rec.compute().dataset, back.dataset)


def test_interrupted_write_refuses_to_open_and_resumes_identically(tmp_path, monkeypatch):
    reference = tmp_path / "reference.zarr"
    simulate(SPEC, chunks=10).to_zarr(reference)

    original = composite_module.composite_frames

    def failing(start, stop, *args):
        if start >= 40:
            raise OSError("disk full (simulated)")
        return original(start, stop, *args)

    monkeypatch.setattr(composite_module, "composite_frames", failing)
    broken = tmp_path / "broken.zarr"
    with pytest.raises(OSError, match="simulated"):
        simulate(SPEC, chunks=10).to_zarr(broken)
    monkeypatch.setattr(composite_module, "composite_frames", original)
    with pytest.raises(IncompleteStoreError, match="resume"):
        open_recording(broken)
    written_before = {k for k, v in zarr.open_group(str(broken)).attrs.items()}
    assert "minisim_complete" in written_before
    simulate(SPEC, chunks=10).to_zarr(broken, mode="resume")
    assert store_bytes(broken) == store_bytes(reference)
    assert_same_dataset(open_recording(broken).dataset, open_recording(reference).dataset)


def test_resume_refuses_another_spec(tmp_path):
    path = tmp_path / "a.zarr"
    simulate(SPEC).to_zarr(path)
    zarr.open_group(str(path), mode="r+").attrs["minisim_complete"] = False
    other = SPEC.model_copy(update={"seed": 10})
    with pytest.raises(ValueError, match="cannot resume"):
        simulate(other).to_zarr(path, mode="resume")
    with pytest.raises(FileExistsError):
        simulate(SPEC).to_zarr(path, mode="w-")


def test_format_version_and_hash_checks(tmp_path):
    path = tmp_path / "a.zarr"
    simulate(SPEC).to_zarr(path)
    group = zarr.open_group(str(path), mode="r+")
    group.attrs["cache_key"] = "0000000000000000"
    with pytest.warns(RecordingFormatWarning, match="hash mismatch"):
        open_recording(path)
    group.attrs["format_version"] = 99
    with pytest.raises(ValueError, match="re-simulate"):
        open_recording(path)


def test_local_cluster_writes_identical_bytes(tmp_path):
    import distributed

    local = tmp_path / "local.zarr"
    simulate(SPEC, chunks=16).to_zarr(local)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        simulate(SPEC, chunks=16).to_zarr(tmp_path / "cluster.zarr")
    assert store_bytes(tmp_path / "cluster.zarr") == store_bytes(local)


def test_losing_a_worker_mid_write_still_gives_identical_bytes(tmp_path):
    import os
    import signal
    import threading
    import time

    import distributed

    spec = SPEC.model_copy(
        update={"acquisition": SPEC.acquisition.model_copy(update={"duration_s": 20.0})}
    )
    local = tmp_path / "local.zarr"
    simulate(spec, chunks=8).to_zarr(local)
    target = tmp_path / "cluster.zarr"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        errors = []

        def write():
            try:
                simulate(spec, chunks=8).to_zarr(target)
            except Exception as err:  # pragma: no cover - reported below
                errors.append(err)

        writer = threading.Thread(target=write)
        writer.start()
        chunks = target / "observed" / "c"
        deadline = time.monotonic() + 60
        while (
            not (chunks.exists() and len(list(chunks.iterdir())) >= 3)
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        pids = client.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # one worker dies mid-run
        writer.join(timeout=120)
        assert not writer.is_alive() and not errors, errors
    assert store_bytes(target) == store_bytes(local)
    assert open_recording(target).ground_truth.n_units == open_recording(local).ground_truth.n_units


def test_a_store_from_another_version_warns_and_is_rewritten_on_resume(tmp_path):
    path = tmp_path / "old.zarr"
    simulate(SPEC).to_zarr(path)
    zarr.open_group(str(path), mode="r+").attrs["minisim_version"] = "0.0.1"
    with pytest.warns(RecordingFormatWarning, match="written by minisim 0.0.1"):
        open_recording(path)
    simulate(SPEC).to_zarr(path, mode="resume")  # not this version's bytes: rewritten whole
    assert zarr.open_group(str(path)).attrs["minisim_version"] != "0.0.1"


def _held_frame_chunks_plugin():
    from distributed import WorkerPlugin

    class HeldFrameChunks(WorkerPlugin):
        """The most frame chunks ((frame, y, x) arrays) the worker held at once."""

        name = "held-frame-chunks"

        def setup(self, worker):
            self.worker = worker
            self.most = 0

        def transition(self, key, start, finish, **kwargs):
            if finish == "memory":
                held = sum(
                    1
                    for value in list(self.worker.data.values())
                    if isinstance(value, np.ndarray) and value.ndim == 3
                )
                self.most = max(self.most, held)

    return HeldFrameChunks()


def test_a_cluster_worker_holds_a_few_frame_chunks_not_the_recording(tmp_path):
    # Regression: distributed queues "root-ish" tasks (plain data in the graph, or groups
    # of small tasks reading one shared block) until a worker has nothing else to do; a
    # pixel step waiting on one made every finished composite chunk pile up on the worker.
    import distributed

    from minisim import IlluminationProfile, Leakage, Vasculature, Vignette

    spec = Spec(
        acquisition=small_acquisition(px=64, duration_s=120.0),
        seed=3,
        steps=[
            PlaceNeurons(),
            CellActivity(),
            CellOptics(),
            Composite(),
            Neuropil(),
            Vasculature(),
            BrainMotion(motion_amplitude_um=1.0, max_shift_um=2.0),
            IlluminationProfile(),
            Vignette(),
            Leakage(),
            Sensor(),
        ],
    )
    rec = simulate(spec, chunks=25)
    n_chunks = len(rec.observed.chunks[0])
    plugin = _held_frame_chunks_plugin()
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.register_plugin(plugin)
        rec.to_zarr(tmp_path / "rec.zarr")
        (worker,) = cluster.workers.values()
        most = worker.plugins[plugin.name].most
    assert n_chunks == 96
    # Scheduler round trips keep a few finished chunks alive a little longer; the bug
    # held every chunk of the recording.
    assert most <= n_chunks // 3, f"a worker held {most} of {n_chunks} frame chunks at once"


def test_the_pickled_graph_does_not_grow_with_frames_times_pixels():
    import cloudpickle

    def pickled_bytes(duration_s):
        spec = SPEC.model_copy(
            update={"acquisition": SPEC.acquisition.model_copy(update={"duration_s": duration_s})}
        )
        rec = simulate(spec, chunks=50)
        arrays = [v.data for v in rec.dataset.variables.values() if hasattr(v.data, "dask")]
        graph = {}
        for arr in arrays:
            graph.update(dict(arr.__dask_graph__()))
        return len(cloudpickle.dumps(graph)), rec.observed.shape

    short, (n_short, h, w) = pickled_bytes(20.0)
    long, (n_long, _, _) = pickled_bytes(80.0)
    per_frame = (long - short) / (n_long - n_short)
    # Each extra chunk of 50 frames adds a few small tasks; a frame of float32 pixels
    # embedded in the graph would add 4·h·w bytes per frame.
    assert per_frame < 0.05 * 4 * h * w, (short, long, per_frame)


def test_a_zarr_write_keeps_in_memory_variables_out_of_its_graph(tmp_path):
    # Static fields and per-cell facts are written when the store is created; chunked
    # into the write's graph they would travel to the scheduler with every write.
    import cloudpickle

    from minisim import IlluminationProfile, Vignette
    from minisim.io.zarr_store import write_recording_lazily

    steps = [*SPEC.steps[:-1], IlluminationProfile(), Vignette(), SPEC.steps[-1]]
    rec = simulate(Spec(acquisition=SPEC.acquisition, seed=SPEC.seed, steps=steps))
    write = write_recording_lazily(rec, tmp_path / "rec.zarr")
    graph = cloudpickle.dumps(dict(write.__dask_graph__()))
    for name in ("illumination", "vignette"):  # float64 coordinates, 12.8 kB each
        field = rec.dataset[name].values
        assert field.dtype == np.float64 and field.shape == (40, 40)
        assert field.tobytes()[-800:] not in graph, name
