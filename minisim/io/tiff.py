"""TIFF export: one (frame, y, x) stack for ImageJ/Fiji, suite2p and CaImAn (``tiff`` extra).

The stack is written frame by frame with tifffile, so memory stays bounded whatever the
recording's length. It carries ImageJ metadata (axes ``TYX``, the frame interval, the
pixel size in µm as the resolution with its unit) and minisim's provenance in the
Software tag plus the spec JSON in the ImageJ ``Info`` field. Sensor counts keep their
8- or 16-bit type; a movie without a sensor is written as float32.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .common import SIGNATURE, exported_cells, movie_dtype, require, written_by
from .outputs import atomic_file, check_file_target
from .stream import iter_blocks, progress_bar

#: Above this many bytes of pixels a classic TIFF cannot hold the stack.
CLASSIC_TIFF_LIMIT = 2**32 - 2**25


def is_minisim_tiff(path: Path) -> bool:
    """A TIFF whose Software tag says minisim wrote it."""
    tifffile = require("tifffile", "tiff", "TIFF export")
    try:
        with tifffile.TiffFile(path) as tif:
            software = tif.pages.first.software
    except Exception:  # not a TIFF at all, or unreadable: not ours
        return False
    return str(software).startswith(SIGNATURE)


def write_tiff(
    rec,
    path,
    *,
    bigtiff: bool | None = None,
    truth: bool = False,
    include_margin: bool = False,
    progress: bool = True,
) -> Path:
    """Stream ``rec.observed`` into an ImageJ-compatible TIFF stack at ``path``.

    ``bigtiff=None`` writes BigTIFF only when the pixels exceed what a classic TIFF can
    address (~4 GiB); ``True``/``False`` force it. ``truth=True`` also writes the ground
    truth beside it as ``<stem>_truth.npz`` (:func:`write_truth_npz`). Returns the path.
    """
    tifffile = require("tifffile", "tiff", "TIFF export")
    path = Path(path)
    movie = rec.observed
    n, height, width = movie.shape
    if n == 0:
        raise ValueError("the recording has no frames to write")
    dtype = movie_dtype(movie)
    if truth:  # refuse before any work, not after the movie is written
        check_file_target(truth_path(path), is_ours=is_minisim_npz, what="ground-truth .npz")
    if bigtiff is None:
        bigtiff = n * height * width * dtype.itemsize > CLASSIC_TIFF_LIMIT
    acq = rec.spec.acquisition
    pixels_per_um = 1.0 / acq.pixel_size_um
    metadata = {
        "axes": "TYX",
        "unit": "um",
        "finterval": 1.0 / acq.fps,
        "fps": acq.fps,
        "Info": rec.dataset.attrs["spec"],
    }
    bar = progress_bar(n, path.name, progress)
    try:
        with warnings.catch_warnings():
            # A BigTIFF with ImageJ metadata is "nonconformant": ImageJ 1.x cannot open
            # BigTIFF at all, but Fiji (Bio-Formats), tifffile, suite2p and CaImAn read it and
            # its calibration; classic TIFF is used whenever the stack fits (bigtiff=None).
            warnings.filterwarnings("ignore", ".*nonconformant BigTIFF ImageJ", UserWarning)
            with atomic_file(path, is_ours=is_minisim_tiff, what="TIFF") as partial:
                # The header first (tifffile reserves the contiguous, uncompressed data
                # area), then each block written straight to its place in the file, in
                # whatever order blocks are computed, so none waits in memory for another.
                # Plain writes, not a memory map: mapped pages would count as this
                # process's memory and hold the whole file at once.
                offset, _ = tifffile.imwrite(
                    partial,
                    data=None,
                    shape=(n, height, width),
                    dtype=dtype,
                    bigtiff=bigtiff,
                    imagej=True,
                    photometric="minisblack",
                    resolution=(pixels_per_um, pixels_per_um),
                    resolutionunit="NONE",
                    software=written_by(),
                    metadata=metadata,
                    returnoffset=True,
                )
                frame_bytes = height * width * dtype.itemsize
                with open(partial, "r+b") as fh:
                    for start, block in iter_blocks(movie.data):
                        fh.seek(offset + start * frame_bytes)
                        fh.write(np.ascontiguousarray(block, dtype=dtype).tobytes())
                        if bar is not None:
                            bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    if truth:
        write_truth_npz(rec, truth_path(path), include_margin=include_margin)
    return path


def truth_path(path) -> Path:
    """Where ``truth=True`` puts the ground truth of a movie file: ``<stem>_truth.npz``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_truth.npz")


#: Arrays of the truth file: its name -> the recording's name (per-cell flags added too).
TRUTH_ARRAYS = {"A": "A_observed", "A_planted": "A_planted", "C": "C", "S": "S"}


def is_minisim_npz(path: Path) -> bool:
    """An ``.npz`` holding minisim's ``minisim_spec`` entry."""

    try:
        with np.load(path, allow_pickle=False) as npz:
            return "minisim_spec" in npz.files
    except Exception:
        return False


def write_truth_npz(rec, path, *, include_margin: bool = False) -> Path:
    """The ground truth as plain numpy arrays, for tools outside minisim's environment.

    Keys: ``A`` (``A_observed``, cell × y × x), ``A_planted``, ``C`` and ``S`` (cell ×
    frame), ``shifts`` (frame × 2, px, applied (dy, dx)) when there is motion, every
    numeric per-cell coordinate under its own name (``detectable``, ``depth_um``, ...),
    ``fps`` and ``minisim_spec`` (the spec JSON). Computed in memory: it holds every
    footprint densely, so it is meant for recordings whose truth fits in memory.

    The cells are the ground truth's units, those in the field of view at rest (``cell``
    holds each one's index in the recording); ``include_margin=True`` adds the margin
    cells simulated around the field, flagged by ``in_fov``.
    """

    ds = exported_cells(rec.dataset, include_margin)
    arrays = {key: ds[name] for key, name in TRUTH_ARRAYS.items() if name in ds}
    arrays["cell"] = ds["cell"]
    for name in ds.coords:
        if ds[name].dims[:1] == ("cell",) and name != "cell" and ds[name].dtype.kind in "biuf":
            arrays[name] = ds[name]
    if "shift_y" in ds.coords:
        arrays["shifts"] = rec.ground_truth.shifts
    import dask

    values = dask.compute({k: v.data for k, v in arrays.items()})[0]
    values = {k: np.asarray(v) for k, v in values.items()}
    values["fps"] = np.float64(rec.spec.acquisition.fps)
    values["minisim_spec"] = np.array(ds.attrs["spec"])
    with atomic_file(path, is_ours=is_minisim_npz, what="ground-truth .npz") as partial:
        with open(partial, "wb") as fh:
            np.savez_compressed(fh, **values)
    return Path(path)
