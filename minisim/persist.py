"""Labelled Zarr v3 stores: streamed writes, safe completion, resume, lazy reopening.

A store is written in three moves: metadata (with ``minisim_complete = False``), then the
chunks (computed by the scheduler in force, possibly on a cluster's workers), then the
completion flag. A store whose flag is not set refuses to open as a recording; a resumed
write recomputes only the frame chunks that are missing, and since every chunk is a pure
function of the spec, the finished store is byte-identical to an uninterrupted write.
"""

from __future__ import annotations

import itertools
import shutil
import warnings
from pathlib import Path

import xarray as xr
import zarr
from dask import delayed
from zarr.core.sync import sync

from .errors import RecordingFormatWarning

#: Root attribute set to True only after every chunk has been written.
COMPLETE_ATTR = "minisim_complete"


class IncompleteStoreError(RuntimeError):
    """The store's write never finished (it can be resumed with ``mode="resume"``)."""


def _zarr_options(storage_options):
    # Empty chunks are written too, so "a chunk exists" means "it was computed and written".
    return {
        "zarr_format": 3,
        "consolidated": False,
        "storage_options": storage_options,
        "write_empty_chunks": True,
    }


def _for_storage(ds: xr.Dataset) -> xr.Dataset:
    """Align every frame-chunked variable with the movie's chunks (one zarr chunk per task)."""
    frame_chunks = ds["observed"].chunks[0]
    out = ds.copy()
    for name, var in ds.variables.items():  # in-memory variables stay in memory
        if var.chunks is not None and "frame" in var.dims:
            out[name] = var.chunk({"frame": frame_chunks})
    out.attrs = {**ds.attrs, COMPLETE_ATTR: False}
    for name in out.variables:  # let chunk encoding follow the dask chunks
        out[name].encoding = {}
    return out


def write_recording(rec, store, *, mode: str = "w", storage_options=None):
    """Write (or resume writing) a recording; see :meth:`Recording.to_zarr`."""
    write_recording_lazily(rec, store, mode=mode, storage_options=storage_options).compute()
    return store


def write_recording_lazily(rec, store, *, mode: str = "w", storage_options=None):
    """Write the store's metadata now and return a Delayed that writes the chunks and
    then flags the store complete (so many recordings can run as one computation)."""
    if mode not in ("w", "w-", "resume"):
        raise ValueError(
            f"mode={mode!r}: use 'w' (overwrite), 'w-' (fail if it exists) or 'resume'"
        )
    ds = _for_storage(rec.dataset)
    if (
        mode == "resume"
        and _exists(store, storage_options)
        and _same_version(store, storage_options)
    ):
        writes = _resume(ds, store, storage_options)
    else:  # a store from another version is rewritten: its bytes may differ
        if mode in ("w", "resume"):
            _remove(store, storage_options)
        # In-memory variables (fields, per-cell facts) are written now, not put in the graph.
        writes = [ds.to_zarr(store, mode="w-", compute=False, **_zarr_options(storage_options))]
    return delayed(_finish, pure=False)(store, storage_options, writes)


def _finish(store, storage_options, _written) -> None:
    _mark_complete(store, storage_options)


def _same_version(store, storage_options) -> bool:
    from . import __version__

    group = zarr.open_group(store, mode="r", zarr_format=3, storage_options=storage_options)
    return group.attrs.get("minisim_version") == __version__


def is_complete(store, storage_options=None, *, same_version: bool = False) -> bool:
    """Does ``store`` hold a finished recording (written by this minisim version, if asked)?

    Results may change between versions, so caches and archives treat a store written by
    another version as missing and simulate it again.
    """
    from . import __version__

    if not _exists(store, storage_options):
        return False
    group = zarr.open_group(store, mode="r", zarr_format=3, storage_options=storage_options)
    if same_version and group.attrs.get("minisim_version") != __version__:
        return False
    return bool(group.attrs.get(COMPLETE_ATTR, False))


def _exists(store, storage_options) -> bool:
    try:
        zarr.open_group(store, mode="r", zarr_format=3, storage_options=storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return False
    return True


def _remove(store, storage_options) -> None:
    if isinstance(store, (str, Path)) and "://" not in str(store):
        shutil.rmtree(store, ignore_errors=True)
    elif _exists(store, storage_options):
        zarr.open_group(store, mode="w", zarr_format=3, storage_options=storage_options)


def _resume(ds: xr.Dataset, store, storage_options) -> list:
    """Lazy writes of whatever an interrupted write left out."""
    group = zarr.open_group(store, mode="r", zarr_format=3, storage_options=storage_options)
    if group.attrs.get(COMPLETE_ATTR):
        return []
    if group.attrs.get("cache_key") != ds.attrs["cache_key"]:
        raise ValueError(
            f"cannot resume {store}: it holds spec {group.attrs.get('cache_key')}, not "
            f"{ds.attrs['cache_key']}; write it with mode='w' instead"
        )
    bounds = _frame_bounds(ds)
    missing = [k for k in range(len(bounds) - 1) if not _frame_chunk_written(group, ds, k)]
    framed = ds.drop_vars([v for v in ds.variables if "frame" not in ds[v].dims])
    static = [v for v in ds.variables if "frame" not in ds[v].dims and v not in ds.dims]
    writes = [
        framed.isel(frame=slice(bounds[k], bounds[k + 1])).to_zarr(
            store,
            region={"frame": slice(bounds[k], bounds[k + 1])},
            compute=False,
            **_zarr_options(storage_options),
        )  # fmt: skip
        for k in missing
    ]
    lazy_static = [v for v in static if ds[v].chunks is not None]
    if lazy_static:  # footprints and per-cell flags: cheap, rewritten whole
        only = ds[lazy_static]
        only = only.drop_vars([v for v in only.variables if v not in lazy_static])
        writes.append(
            only.to_zarr(store, mode="r+", compute=False, **_zarr_options(storage_options))
        )
    return writes


def _frame_bounds(ds: xr.Dataset) -> list[int]:
    bounds = [0]
    for size in ds["observed"].chunks[0]:
        bounds.append(bounds[-1] + size)
    return bounds


def _frame_chunk_written(group, ds: xr.Dataset, k: int) -> bool:
    """Is every chunk of frame chunk k present, in every array with a frame axis?"""
    for name in ds.variables:
        dims = ds[name].dims
        if "frame" not in dims or name == "frame":
            continue
        array = group[name]
        ranges = [
            range(-(-size // chunk)) for size, chunk in zip(array.shape, array.chunks, strict=True)
        ]
        ranges[dims.index("frame")] = range(k, k + 1)
        if not all(_chunk_exists(array, index) for index in itertools.product(*ranges)):
            return False
    return True


def _chunk_exists(array, index) -> bool:
    key = array.metadata.encode_chunk_key(tuple(index))
    return sync(array.store_path.store.exists(f"{array.store_path.path}/{key}"))


def _mark_complete(store, storage_options) -> None:
    group = zarr.open_group(store, mode="r+", zarr_format=3, storage_options=storage_options)
    extra = {}
    if "focal_depth_um" in group and group["focal_depth_um"].ndim == 0:
        extra["focal_depth_um"] = float(group["focal_depth_um"][()])
    group.attrs.update({**extra, COMPLETE_ATTR: True})
    # Consolidated metadata lets plain xr.open_zarr(path) open the store in one read.
    # Zarr warns that consolidation is not (yet) in the v3 spec; xarray reads it fine,
    # and the store stays readable without it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(group.store, zarr_format=3)


def open_recording(store, *, storage_options=None):
    """Reopen a stored recording lazily (nothing is read until asked).

    Raises
    ------
    IncompleteStoreError
        If the write never finished.
    ValueError
        If the store was written by an incompatible format version.
    """
    from .recording import FORMAT_VERSION, Recording, load_spec_quietly

    group = zarr.open_group(store, mode="r", zarr_format=3, storage_options=storage_options)
    if not group.attrs.get(COMPLETE_ATTR, False):
        raise IncompleteStoreError(
            f"{store} is incomplete: its write was interrupted. Finish it with "
            "simulate(spec).to_zarr(path, mode='resume') or rewrite it with mode='w'"
        )
    ds = xr.open_zarr(store, zarr_format=3, consolidated=True, storage_options=storage_options)
    version = ds.attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{store} has format_version={version!r}, this minisim reads {FORMAT_VERSION}: "
            "re-simulate it from its spec (the attrs' 'spec' JSON) with this version"
        )
    spec = load_spec_quietly(ds.attrs["spec"])
    from . import __version__

    if ds.attrs.get("minisim_version") != __version__:
        warnings.warn(
            f"{store} was written by minisim {ds.attrs.get('minisim_version')}, this is "
            f"{__version__}: re-simulating its spec may not give the same bytes",
            RecordingFormatWarning,
            stacklevel=2,
        )
    if spec.cache_key() != ds.attrs.get("cache_key"):
        warnings.warn(
            f"{store}: spec hash mismatch (stored {ds.attrs.get('cache_key')}, spec hashes to "
            f"{spec.cache_key()}); loading anyway",
            RecordingFormatWarning,
            stacklevel=2,
        )
    ds = ds.drop_attrs(deep=False).assign_attrs(
        {k: v for k, v in ds.attrs.items() if k != COMPLETE_ATTR}
    )
    if "axis" in ds.coords:
        ds = ds.assign_coords(axis=ds["axis"].values.astype(object))
    return Recording(ds)
