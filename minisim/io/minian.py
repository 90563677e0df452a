"""minian export: a folder in minian's own layout, one Zarr **v2** store per variable.

minian (``minian.utilities.open_minian``) opens every ``<name>.zarr`` of a folder with
xarray and merges them; its environment reads Zarr v2 only. This writes, with zarr-python
3's v2 support and Blosc compression (which minian's zarr 2 reads):

========================  ===============================  ================================
store                     dims                             minisim name
========================  ===============================  ================================
``varr.zarr``             (frame, height, width)           ``observed`` (the raw movie)
``A.zarr``                (unit_id, height, width)         ``A_observed``
``A_planted.zarr``        (unit_id, height, width)         ``A_planted``
``C.zarr``, ``S.zarr``    (unit_id, frame)                 ``C``, ``S``
``motion.zarr``           (frame, shift_dim)               ``−shifts`` (the correction)
========================  ===============================  ================================

The units are the cells in the field of view at rest, the ground truth's units and what a
motion-corrected pipeline can find; ``unit_id`` is each one's ``cell`` index in the
recording. The margin cells simulated around the field for brain motion are left out
(``include_margin=True`` keeps them, flagged by ``in_fov``). Per-cell truths
(``detectable``, ``in_focus``, ``depth_um``, ...) ride along as ``unit_id`` coordinates of
``A``. ``motion`` holds what minian's ``estimate_motion`` should find: the
negation of the applied shifts, with ``shift_dim = ["height", "width"]``.

Optionally (``videos=True``) the movie also goes out as minian-style AVI chunks
(``msCam1.avi``, ``msCam2.avi``, …, 1000 frames each, uncompressed 8-bit gray) for users
of its ``load_videos``.

The folder is written under a sibling temporary name and renamed when whole; a marker
file (``minisim_export.json``) says minisim wrote it, and only such a folder (or an empty
one) is ever replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from .common import exported_cells, package_version, written_by
from .outputs import OLD_INFIX, PARTIAL_INFIX, refuse, remove_path, remove_stale_siblings, sibling

#: The file that marks a folder as written by minisim (and what it holds).
MARKER = "minisim_export.json"
#: Frames per AVI chunk, as the Miniscope DAQ software writes them.
FRAMES_PER_AVI = 1000


def is_minisim_minian(folder: Path) -> bool:
    """A folder holding minisim's export marker."""
    marker = Path(folder) / MARKER
    try:
        return json.loads(marker.read_text()).get("written_by", "").startswith("minisim")
    except (OSError, ValueError, AttributeError):
        return False


def minian_variables(rec, include_margin: bool = False) -> dict[str, xr.DataArray]:
    """The recording as minian names it: lazy DataArrays keyed by store name. The units are
    the cells in the field at rest (:func:`~minisim.io.common.exported_cells`)."""
    ds = exported_cells(rec.dataset, include_margin)
    per_unit = {
        name: ds[name].variable
        for name in ds.coords
        if ds[name].dims == ("cell",) and name != "cell" and ds[name].dtype.kind in "biuf"
    }
    unit_coords = {"unit_id": np.asarray(ds["cell"].values)}  # the recording's cell index
    unit_coords.update(
        {name: ("unit_id", np.asarray(var.values)) for name, var in per_unit.items()}
    )
    frame = np.arange(ds.sizes["frame"])

    def plain(name, dims, data, coords):
        return xr.DataArray(data, dims=dims, coords=coords, name=name)

    out = {
        "varr": plain(
            "varr",
            ("frame", "height", "width"),
            ds["observed"].data,
            {"frame": frame, "height": np.arange(ds.sizes["y"]), "width": np.arange(ds.sizes["x"])},
        ),  # fmt: skip
    }
    spatial = {"height": np.arange(ds.sizes["y"]), "width": np.arange(ds.sizes["x"])}
    out["A"] = plain("A", ("unit_id", "height", "width"), ds["A_observed"].data,
                     {**unit_coords, **spatial})  # fmt: skip
    out["A_planted"] = plain("A_planted", ("unit_id", "height", "width"), ds["A_planted"].data,
                             {"unit_id": unit_coords["unit_id"], **spatial})  # fmt: skip
    for name in ("C", "S"):
        if name in ds:
            out[name] = plain(name, ("unit_id", "frame"), ds[name].data,
                              {"unit_id": unit_coords["unit_id"], "frame": frame})  # fmt: skip
    if "shift_y" in ds.coords:
        shifts = -np.stack([np.asarray(ds["shift_y"].values), np.asarray(ds["shift_x"].values)], 1)
        out["motion"] = plain("motion", ("frame", "shift_dim"), shifts.astype(np.float32),
                              {"frame": frame, "shift_dim": ["height", "width"]})  # fmt: skip
    return out


def _blosc():
    from numcodecs import Blosc

    return Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)


def _write_store(array: xr.DataArray, path: Path) -> None:
    if array.chunks is not None:
        # One Zarr chunk per dask chunk (a regular grid, as Zarr needs), whole other axes.
        first = array.chunks[0][0] or 1
        array = array.chunk({array.dims[0]: first, **{d: -1 for d in array.dims[1:]}})
    ds = array.to_dataset()
    for name in ds.variables:
        ds[name].encoding = {}
    encoding = {array.name: {"compressors": [_blosc()]}}
    ds.to_zarr(path, mode="w-", zarr_format=2, consolidated=True, encoding=encoding)


def write_minian(
    rec, folder, *, videos: bool = False, include_margin: bool = False, progress: bool = True
) -> Path:
    """Write ``rec`` into ``folder`` in minian's layout (see the module docstring);
    ``include_margin=True`` adds the margin cells to the units."""
    from .stream import progress_bar

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise refuse(folder, "it is a file", "choose a folder name")
    if folder.is_dir() and any(folder.iterdir()) and not is_minisim_minian(folder):
        raise refuse(folder, "it is a folder that minisim did not write", "choose another path")
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(folder)
    partial = sibling(folder, PARTIAL_INFIX)
    partial.mkdir()
    variables = minian_variables(rec, include_margin)
    bar = progress_bar(len(variables) + int(videos), folder.name, progress, unit="store")
    try:
        for name, array in variables.items():
            _write_store(array, partial / f"{name}.zarr")
            if bar is not None:
                bar.update(1)
        if videos:
            write_avi_chunks(rec, partial)
        marker = {
            "written_by": written_by(),
            "minisim_version": package_version(),
            "cache_key": rec.dataset.attrs.get("cache_key"),
            "stores": sorted(f"{name}.zarr" for name in variables),
            "videos": sorted(p.name for p in partial.glob("msCam*.avi")),
            "spec": json.loads(rec.dataset.attrs["spec"]),
        }
        (partial / MARKER).write_text(json.dumps(marker, indent=1))
        _swap_in(partial, folder)
    except BaseException:
        remove_path(partial)
        raise
    finally:
        if bar is not None:
            bar.close()
    return folder


def _swap_in(partial: Path, folder: Path) -> None:
    """Put the finished folder in place; an old export is moved aside first, then removed."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    if folder.exists():  # checked ours above
        old = sibling(folder, OLD_INFIX)
        os.replace(folder, old)
        os.replace(partial, folder)
        remove_path(old)
    else:
        os.replace(partial, folder)


def write_avi_chunks(rec, folder, *, frames_per_file: int = FRAMES_PER_AVI) -> list[Path]:
    """The movie as ``msCam1.avi``, ``msCam2.avi``, … (``frames_per_file`` frames each)."""
    from .video import write_movie

    movie = rec.observed
    vmax = _video_vmax(rec)
    paths = []
    for k, start in enumerate(range(0, movie.shape[0], frames_per_file), start=1):
        part = movie.data[start : start + frames_per_file]
        path = Path(folder) / f"msCam{k}.avi"
        write_movie(part, path, fps=rec.spec.acquisition.fps, vmin=0.0, vmax=vmax,
                    progress=False)  # fmt: skip
        paths.append(path)
    return paths


def _video_vmax(rec) -> float:
    if rec.holds_counts:
        return float(rec.spec.acquisition.image_sensor.max_count)
    return float(rec.observed.max())
