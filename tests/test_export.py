"""Exporters read back by the real readers: pynwb + nwbinspector, tifffile, zarr (v2), PyAV.

Every exporter also follows the trust rules: a file or folder that minisim did not write is
refused and left untouched, and a write that fails leaves no file that looks complete.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from minisim import (
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
    Vignette,
    open_recording,
    simulate,
)
from minisim.cli import main
from minisim.io import stream
from minisim.io.outputs import OutputPathError
from minisim.io.video import is_minisim_video, read_video

pytestmark = pytest.mark.filterwarnings("ignore::minisim.SpecWarning")


def full_chain(sensor=True, bit_depth=8, seconds=4.0) -> Spec:
    """24 × 32 px at 2 µm/px (non-square, so a swapped axis shows), 80 frames, all truths."""
    acq = Acquisition(
        fps=20.0,
        duration_s=seconds,
        optics=Optics(magnification=4.0),
        image_sensor=ImageSensor(
            n_px_height=24, n_px_width=32, pixel_pitch_um=8.0, bit_depth=bit_depth
        ),
    )
    steps = [PlaceNeurons(), CellActivity(), Bleaching(), CellOptics(), Composite(), Neuropil(),
             BrainMotion(motion_amplitude_um=4.0), IlluminationProfile(), Vignette(), Leakage()]  # fmt: skip
    if sensor:
        steps.append(Sensor())
    return Spec(acquisition=acq, seed=5, steps=steps)


@pytest.fixture(scope="module")
def rec():
    return simulate(full_chain(), chunks=7)


@pytest.fixture(scope="module")
def truth(rec):
    return rec.compute()


# ----------------------------------------------------------------------------------- TIFF


def test_tiff_reads_back_with_imagej_metadata(rec, truth, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    path = rec.to_tiff(tmp_path / "rec.tif", progress=False)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and not tif.is_bigtiff  # ImageJ 1.x reads classic TIFF only
        assert tif.series[0].axes == "TYX"
        stack = tif.asarray()
        meta = tif.imagej_metadata
        page = tif.pages.first
        x_res = page.tags["XResolution"].value
        assert page.software.startswith("minisim")
    assert stack.dtype == np.uint8 and np.array_equal(stack, truth.observed.values)
    assert meta["unit"] == "um" and meta["finterval"] == pytest.approx(1 / 20.0)
    assert meta["images"] == 80
    assert x_res[0] / x_res[1] == pytest.approx(0.5)  # pixels per µm at 2 µm/px
    assert Spec.model_validate_json(meta["Info"]) == rec.spec


def test_tiff_bit_depth_follows_the_sensor(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    deep = simulate(full_chain(bit_depth=12, seconds=1.0))
    clean = simulate(full_chain(sensor=False, seconds=1.0))
    with tifffile.TiffFile(deep.to_tiff(tmp_path / "deep.tif", bigtiff=True, progress=False)) as t:
        assert t.is_bigtiff and t.asarray().dtype == np.uint16
        assert np.array_equal(t.asarray(), deep.observed.values)
    stack = tifffile.imread(clean.to_tiff(tmp_path / "clean.tif", progress=False))
    assert stack.dtype == np.float32
    assert np.array_equal(stack, clean.observed.values.astype(np.float32))


def test_tiff_never_replaces_a_foreign_file_and_fails_cleanly(rec, tmp_path, monkeypatch):
    pytest.importorskip("tifffile")
    foreign = tmp_path / "theirs.tif"
    foreign.write_bytes(b"not ours")
    with pytest.raises(OutputPathError, match="theirs.tif"):
        rec.to_tiff(foreign, progress=False)
    assert foreign.read_bytes() == b"not ours"

    ours = rec.to_tiff(tmp_path / "ours.tif", progress=False)
    before = ours.read_bytes()

    def failing_blocks(data, axis=0, **kw):
        yield 0, np.asarray(data[:7])
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr("minisim.io.tiff.iter_blocks", failing_blocks)
    with pytest.raises(RuntimeError, match="killed"):
        rec.to_tiff(ours, progress=False)
    assert ours.read_bytes() == before  # the old export is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.tif", "theirs.tif"]


def test_tiff_with_its_truth_beside_it(rec, truth, tmp_path):
    pytest.importorskip("tifffile")
    rec.to_tiff(tmp_path / "rec.tif", truth=True, progress=False)
    gt = truth.ground_truth  # the units: the cells in the field at rest
    assert gt.including_margin().n_units > gt.n_units  # the fixture has margin cells
    units = np.flatnonzero(truth.dataset["in_fov"].values)  # their index in the recording
    with np.load(tmp_path / "rec_truth.npz") as npz:
        assert np.array_equal(npz["A"], gt.A_observed.values)
        assert np.array_equal(npz["C"], gt.C.values) and np.array_equal(npz["S"], gt.S.values)
        assert np.array_equal(npz["shifts"], gt.shifts.values)
        assert np.array_equal(npz["detectable"], gt.detectable.values)
        assert np.array_equal(npz["cell"], units) and npz["in_fov"].all()
        assert Spec.model_validate_json(str(npz["minisim_spec"])) == rec.spec
        assert float(npz["fps"]) == 20.0
    rec.to_tiff(tmp_path / "all.tif", truth=True, include_margin=True, progress=False)
    with np.load(tmp_path / "all_truth.npz") as npz:
        everyone = truth.ground_truth.including_margin()
        assert np.array_equal(npz["A"], everyone.A_observed.values)
        assert np.array_equal(npz["in_fov"], truth.dataset["in_fov"].values)
    (tmp_path / "other_truth.npz").write_bytes(b"theirs")
    with pytest.raises(OutputPathError):
        rec.to_tiff(tmp_path / "other.tif", truth=True, progress=False)
    assert (tmp_path / "other_truth.npz").read_bytes() == b"theirs"
    assert not (tmp_path / "other.tif").exists()  # refused before any work


def test_missing_extra_names_the_install_command(rec, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tifffile", None)
    with pytest.raises(ImportError, match=r'pip install "minisim\[tiff\]"'):
        rec.to_tiff(tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()


# ------------------------------------------------------------------------------------ NWB


def test_nwb_reads_back_equal_and_passes_nwbinspector(rec, truth, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    path = rec.to_nwb(tmp_path / "rec.nwb", progress=False)
    gt = truth.ground_truth  # the units: the cells in the field at rest
    assert gt.including_margin().n_units > gt.n_units  # the fixture has margin cells
    units = np.flatnonzero(truth.dataset["in_fov"].values)  # their index in the recording
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        series = nwb.acquisition["OnePhotonSeries"]
        # NWB image axes are (x, y): the exporter transposes minisim's (y, x).
        assert series.data.shape == (80, 32, 24) and series.data.compression == "gzip"
        assert np.array_equal(series.data[:].transpose(0, 2, 1), truth.observed.values)
        assert series.rate == 20.0
        plane = series.imaging_plane
        assert plane.optical_channel[0].emission_lambda == 525.0
        assert list(plane.grid_spacing[:]) == [2.0, 2.0] and plane.imaging_rate == 20.0
        assert "NA 0.45" in plane.device.description
        ophys = nwb.processing["ophys"]
        table = ophys["ImageSegmentation"]["PlaneSegmentation"]
        assert len(table) == gt.n_units and np.array_equal(table.id[:], units)
        assert np.array_equal(table["image_mask"].data[:].transpose(0, 2, 1), gt.A_observed.values)
        assert np.array_equal(
            table["planted_image_mask"].data[:].transpose(0, 2, 1), gt.A_planted.values
        )
        assert np.array_equal(table["detectable"].data[:], gt.detectable.values)
        assert np.array_equal(table["centers_um"].data[:], gt.centers_um.values)
        assert np.array_equal(ophys["Fluorescence"]["C"].data[:].T, gt.C.values)
        assert np.array_equal(ophys["S"].data[:].T, gt.S.values)
        assert np.array_equal(ophys["motion_shifts"].data[:], gt.shifts.values)
        assert ophys["motion_shifts"].unit == "pixels"
        images = ophys["static_fields"]
        assert np.allclose(images["vignette"].data[:].T, gt.vignette.values.astype(np.float32))
        assert Spec.model_validate_json(nwb.notes) == rec.spec  # the file alone reproduces it
        assert nwb.source_script.startswith("minisim")

    from nwbinspector import Importance, inspect_nwbfile

    everyone = rec.to_nwb(tmp_path / "all.nwb", include_margin=True, progress=False)
    with pynwb.NWBHDF5IO(str(everyone), "r") as io:
        table = io.read().processing["ophys"]["ImageSegmentation"]["PlaneSegmentation"]
        assert len(table) == gt.including_margin().n_units
        assert np.array_equal(table["in_fov"].data[:], truth.dataset["in_fov"].values)

    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    critical = [m for m in messages if m.importance == Importance.CRITICAL]
    assert not critical, [m.message for m in critical]


def test_nwb_from_a_reopened_store_and_trust(rec, truth, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    import h5py

    rec.to_zarr(tmp_path / "rec.zarr")
    foreign = tmp_path / "theirs.nwb"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    before = foreign.read_bytes()
    with pytest.raises(OutputPathError, match="theirs.nwb"):
        open_recording(tmp_path / "rec.zarr").to_nwb(foreign, progress=False)
    assert foreign.read_bytes() == before
    out = open_recording(tmp_path / "rec.zarr").to_nwb(tmp_path / "again.nwb", progress=False)
    out = open_recording(tmp_path / "rec.zarr").to_nwb(out, progress=False)  # ours: replaced
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        data = io.read().acquisition["OnePhotonSeries"].data[:]
    assert np.array_equal(data.transpose(0, 2, 1), truth.observed.values)


# --------------------------------------------------------------------------------- minian


def test_minian_layout_reads_as_zarr_v2(rec, truth, tmp_path):
    import xarray as xr
    import zarr

    folder = rec.to_minian(tmp_path / "minian", progress=False)
    expect = {"varr": ("frame", "height", "width"), "A": ("unit_id", "height", "width"),
              "C": ("unit_id", "frame"), "S": ("unit_id", "frame"),
              "motion": ("frame", "shift_dim")}  # fmt: skip
    for name, dims in expect.items():
        group = zarr.open_group(folder / f"{name}.zarr", mode="r", zarr_format=2)
        array = group[name]
        assert array.metadata.zarr_format == 2
        assert tuple(array.attrs["_ARRAY_DIMENSIONS"]) == dims
        assert type(array.metadata.compressor).__name__ == "Blosc"  # zarr 2 reads it
    # What minian's open_minian does: open every store and merge them.
    ds = xr.merge([xr.open_zarr(folder / f"{n}.zarr", zarr_format=2) for n in expect])
    gt = truth.ground_truth  # the units: the cells in the field at rest
    assert gt.including_margin().n_units > gt.n_units  # the fixture has margin cells
    units = np.flatnonzero(truth.dataset["in_fov"].values)  # their index in the recording
    assert np.array_equal(ds["varr"].values, truth.observed.values)
    assert np.array_equal(ds["A"].values, gt.A_observed.values)
    assert np.array_equal(ds["C"].values, gt.C.values)
    assert np.array_equal(ds["S"].values, gt.S.values)
    assert list(ds["shift_dim"].values) == ["height", "width"]
    assert np.allclose(ds["motion"].values, -gt.shifts.values)  # the correction to apply
    assert np.array_equal(ds["detectable"].values, gt.detectable.values)
    assert np.array_equal(ds["unit_id"].values, units)
    everyone = rec.to_minian(tmp_path / "all", include_margin=True, progress=False)
    all_a = xr.open_zarr(everyone / "A.zarr", zarr_format=2)["A"]
    assert np.array_equal(all_a.values, gt.including_margin().A_observed.values)
    marker = json.loads((folder / "minisim_export.json").read_text())
    assert marker["cache_key"] == rec.spec.cache_key()


def test_minian_folder_trust_and_avi_chunks(rec, truth, tmp_path):
    from minisim.io.minian import write_avi_chunks

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(OutputPathError, match="theirs"):
        rec.to_minian(theirs, progress=False)
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]

    folder = rec.to_minian(tmp_path / "ours", progress=False)
    (folder / "stale.txt").write_text("from an older export")
    rec.to_minian(folder, progress=False)  # ours: replaced whole
    assert not (folder / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if "minisim-" in p.name]  # no temporaries left

    paths = write_avi_chunks(rec, tmp_path / "ours", frames_per_file=30)
    assert [p.name for p in paths] == ["msCam1.avi", "msCam2.avi", "msCam3.avi"]
    decoded = np.concatenate([read_video(p) for p in paths])
    assert np.array_equal(decoded, truth.observed.values)


# ---------------------------------------------------------------------------------- video


def test_default_video_is_uncompressed_gray_and_refuses_foreign_files(rec, truth, tmp_path):
    av = pytest.importorskip("av")
    path = rec.write_video(tmp_path / "rec.avi", progress=False)
    with av.open(str(path)) as container:
        stream_ = container.streams.video[0]
        assert stream_.codec_context.name == "rawvideo"
        assert container.metadata["comment"].startswith("minisim")
    assert is_minisim_video(path)
    assert np.array_equal(read_video(path), truth.observed.values)
    rec.write_video(path, codec="ffv1", progress=False)  # ours: replaced
    assert np.array_equal(read_video(path), truth.observed.values)

    foreign = tmp_path / "holiday.avi"
    foreign.write_bytes(b"someone's movie")
    with pytest.raises(OutputPathError, match="holiday.avi"):
        rec.write_video(foreign, progress=False)
    assert foreign.read_bytes() == b"someone's movie"
    with pytest.raises(ValueError, match="suffix"):
        rec.write_video(tmp_path / "rec.xyz", progress=False)


# ------------------------------------------------------------------------------------ CLI


def test_cli_exports_a_store(rec, truth, tmp_path, capsys):
    pytest.importorskip("pynwb")
    tifffile = pytest.importorskip("tifffile")
    store = tmp_path / "rec.zarr"
    rec.to_zarr(store)
    for fmt, out in [("tiff", "rec.tif"), ("nwb", "rec.nwb"), ("minian", "mn"), ("avi", "r.avi")]:
        assert main(["export", str(store), "--to", fmt, "-o", str(tmp_path / out)]) == 0
    assert np.array_equal(tifffile.imread(tmp_path / "rec.tif"), truth.observed.values)
    assert np.array_equal(read_video(tmp_path / "r.avi"), truth.observed.values)
    assert (tmp_path / "mn" / "varr.zarr").is_dir()
    capsys.readouterr()
    (tmp_path / "theirs.tif").write_text("x")
    assert main(["export", str(store), "--to", "tiff", "-o", str(tmp_path / "theirs.tif")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing" in err
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(rec.spec.model_dump_json())
    (tmp_path / "theirs.avi").write_text("x")
    assert main(["video", str(spec_file), "-o", str(tmp_path / "theirs.avi")]) == 2
    assert "refusing" in capsys.readouterr().err
    assert (tmp_path / "theirs.avi").read_text() == "x"


# ---------------------------------------------------------------------------- streaming


def test_blocks_say_where_they_go_and_errors_propagate():
    import dask.array as da

    data = da.arange(100, chunks=7).reshape(100, 1)
    got = sorted(stream.iter_blocks(data), key=lambda item: item[0])  # as they finish
    assert [s for s, _ in got] == list(range(0, 100, 7))
    assert np.array_equal(np.concatenate([b for _, b in got])[:, 0], np.arange(100))

    def boom(block):
        if block[0] >= 50:
            raise ValueError("bad chunk")
        return block

    bad = da.arange(100, chunks=10).map_blocks(boom)
    with pytest.raises(ValueError, match="bad chunk"):
        list(stream.iter_blocks(bad))
    blocks = stream.iter_blocks(da.arange(100, chunks=10))
    next(blocks)
    blocks.close()  # a consumer that stops early cancels the rest


def test_blocks_in_memory_stay_bounded():
    """Blocks are handed over as they finish, so a slow consumer holds back the producer:
    never more than a few blocks exist at once (an ordered chain let them pile up)."""
    import threading
    import time

    import dask.array as da

    alive, peak, lock = [0], [0], threading.Lock()

    class Tracked(np.ndarray):
        def __del__(self):
            with lock:
                alive[0] -= 1

    def make(block):
        with lock:
            alive[0] += 1
            peak[0] = max(peak[0], alive[0])
        return block.view(Tracked)

    data = da.zeros((60, 4), chunks=(1, 4)).map_blocks(make)
    for _start, block in stream.iter_blocks(data, ahead=2):
        time.sleep(0.01)  # a slow writer
        del block
    threads = os.cpu_count()  # the threaded scheduler's pool
    assert peak[0] <= threads + 2 + 2, peak[0]


def test_exports_with_a_distributed_client(rec, truth, tmp_path):
    """With a Client active, blocks are computed on its workers and written here in order."""
    tifffile = pytest.importorskip("tifffile")
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        path = rec.to_tiff(tmp_path / "rec.tif", progress=False)
    assert np.array_equal(tifffile.imread(path), truth.observed.values)
