"""Labelled Zarr v3 stores: safe targets, atomic overwrites, resume, verified reopening.

A store is written in three moves: metadata (root attribute ``minisim_complete = False``),
then the chunks (computed by the scheduler in force, possibly on a cluster's workers), then
the completion record (what the store holds) and flag. Every chunk ends with a crc32c
checksum. A store whose flag is not set refuses to open; a resumed write recomputes only
the frame chunks that are missing, and since every chunk is a pure function of the spec,
the finished store is byte-identical to an uninterrupted write.

What may be written (see :mod:`minisim.io.outputs`): a path that does not exist, an empty
folder, or a minisim store. Anything else is refused untouched. Overwriting a complete local
store is atomic: the new store is written under a hidden sibling name and swapped in only
once complete. On an object store (an fsspec URL) there is no rename: the old store is first
flagged incomplete, so an interrupted overwrite leaves a store that refuses to open.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import fsspec
import xarray as xr
import zarr
from dask import delayed
from zarr.storage import FsspecStore, LocalStore

from ..engine.chunks import normalize_chunks
from ..errors import RecordingFormatWarning
from ..version import FORMAT_VERSION, __version__
from .integrity import (
    CONTENTS_ATTR,
    StrictStore,
    check_contents,
    checked_array,
    chunk_compressors,
    contents_of,
    list_keys,
    verify_group,
)
from .outputs import (
    OLD_INFIX,
    PARTIAL_INFIX,
    local_path,
    refuse,
    remove_path,
    remove_stale_siblings,
    sibling,
)

#: Root attribute set to True only after every chunk has been written.
COMPLETE_ATTR = "minisim_complete"
#: Root attribute of an unfinished store, for anyone who opens it with plain xarray/zarr.
UNFINISHED_ATTR = "minisim_unfinished"
UNFINISHED_NOTE = (
    "INCOMPLETE: this minisim store is being written or its write was interrupted; its "
    "missing chunks read as fill values. Finish it with to_zarr(path, mode='resume')."
)


class IncompleteStoreError(RuntimeError):
    """The store's write never finished (it can be resumed with ``mode="resume"``)."""


def target(store):
    """``store`` as this module handles it: a local Path (``file://`` URLs included) or an
    fsspec URL string."""
    local = local_path(store)
    return local if local is not None else str(store)


def _zarr_options(storage_options):
    # Empty chunks are written too, so "a chunk exists" means "it was computed and written".
    return {
        "zarr_format": 3,
        "consolidated": False,
        "storage_options": storage_options,
        "write_empty_chunks": True,
    }


def _for_storage(ds: xr.Dataset) -> xr.Dataset:
    """Align every frame-chunked variable with the movie's chunks (one zarr chunk per task),
    and give every variable a checksum."""
    frame_chunks = ds["observed"].chunks
    if frame_chunks is None:  # a computed recording: cut it as simulate() would
        n, height, width = ds["observed"].shape
        frame_chunks = (normalize_chunks(None, n, height * width * 4),)
    frame_chunks = frame_chunks[0]
    out = ds.copy()
    for name, var in ds.variables.items():  # in-memory variables stay in memory
        if var.chunks is not None and "frame" in var.dims:
            out[name] = var.chunk({"frame": frame_chunks})
    for name, var in ds.variables.items():  # text as variable-length strings: portable in v3
        if var.dtype.kind == "U":
            out[name] = var.astype(object)
    out.attrs = {**ds.attrs, COMPLETE_ATTR: False, UNFINISHED_ATTR: UNFINISHED_NOTE}
    for name in out.variables:  # chunk encoding follows the dask chunks
        out[name].encoding = {"compressors": chunk_compressors()}
    return out


# -- what is at the target ------------------------------------------------------------------


def _root_attrs(store, storage_options) -> dict | None:
    """The root attributes of a Zarr v3 group at ``store``, or None if there is none."""
    fs, path = _fs(store, storage_options)
    try:
        text = fs.cat_file(f"{path.rstrip('/')}/zarr.json")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    try:
        meta = json.loads(text)
    except ValueError:
        return {}
    return meta.get("attributes", {}) if isinstance(meta, dict) else {}


def _fs(store, storage_options):
    if isinstance(store, Path):
        return fsspec.filesystem("file"), str(store)
    return fsspec.core.url_to_fs(store, **(storage_options or {}))


def _is_minisim(attrs: dict | None) -> bool:
    return bool(attrs) and "minisim_version" in attrs and "format_version" in attrs


def inspect_target(store, storage_options=None) -> str:
    """``"absent"``, ``"complete"`` or ``"incomplete"`` (a minisim store); raises
    :class:`~minisim.io.outputs.OutputPathError` for anything that is not ours."""
    if isinstance(store, Path):
        _restore_interrupted_swap(store)
    fs, path = _fs(store, storage_options)
    if not fs.exists(path):
        return "absent"
    if fs.isfile(path):
        raise refuse(store, "it is a file, not a minisim store", "choose a new store path")
    attrs = _root_attrs(store, storage_options)
    if attrs is None:
        if not fs.ls(path):
            return "absent"  # an empty folder (or prefix) is free to use
        raise refuse(
            store,
            "it is a non-empty folder that is not a minisim store",
            "choose a new store path, e.g. a name ending in .zarr",
        )
    if not _is_minisim(attrs):
        raise refuse(
            store, "it is a Zarr store that minisim did not write", "choose a new store path"
        )
    return "complete" if attrs.get(COMPLETE_ATTR) else "incomplete"


def _restore_interrupted_swap(path: Path) -> None:
    """A write killed between the two renames of a swap left the old store under its
    hidden name: put it back before anything else looks at the path."""
    if path.exists() or not path.parent.is_dir():
        return
    olds = sorted(path.parent.glob(f".{path.name}{OLD_INFIX}*"))
    if olds:
        os.rename(olds[-1], path)


# -- writing ----------------------------------------------------------------------------------


def write_recording(rec, store, *, mode: str = "w", storage_options=None, progress=False):
    """Write (or resume writing) a recording; see :meth:`Recording.to_zarr`."""
    from .progress import compute

    compute([write_recording_lazily(rec, store, mode=mode, storage_options=storage_options)],
            progress=progress)  # fmt: skip
    return store


def write_recording_lazily(rec, store, *, mode: str = "w", storage_options=None):
    """Check the target, write the store's metadata now and return a Delayed that writes
    the chunks and then completes the store (so many recordings can run as one computation).
    """
    if mode not in ("w", "w-", "resume"):
        raise ValueError(
            f"mode={mode!r}: use 'w' (overwrite), 'w-' (fail if it exists) or 'resume'"
        )
    where = target(store)
    state = inspect_target(where, storage_options)
    if mode == "w-" and state != "absent":
        raise FileExistsError(
            f"{store} already holds a minisim store and mode='w-' never replaces one; "
            "use mode='w' to overwrite it or mode='resume' to finish it"
        )
    ds = _for_storage(rec.dataset)
    if isinstance(where, Path):
        remove_stale_siblings(where)
    if state != "absent" and not _same_version(where, storage_options):
        state = "stale"  # another version's bytes may differ: rewrite it whole
    if mode == "resume" and state == "complete":
        _check_same_spec(where, storage_options, ds)
        return delayed(_nothing)()
    if mode == "resume" and state == "incomplete":
        writes = _resume(ds, where, storage_options)
        return delayed(_finish, pure=False)(where, storage_options, None, writes)
    if state == "complete" and isinstance(where, Path):
        partial = sibling(where, PARTIAL_INFIX)  # swapped in by _finish once complete
        writes = [ds.to_zarr(partial, mode="w-", compute=False, **_zarr_options(None))]
        return delayed(_finish, pure=False)(partial, None, where, writes)
    if state != "absent":  # ours: an unfinished or stale store, or one on an object store
        _flag_incomplete(where, storage_options)
        _clear(where, storage_options)
    # In-memory variables (fields, per-cell facts) are written now, not put in the graph.
    writes = [ds.to_zarr(_zarr_target(where), mode="w-", compute=False,
                         **_zarr_options(storage_options))]  # fmt: skip
    return delayed(_finish, pure=False)(where, storage_options, None, writes)


@contextmanager
def profiled_write(rec, store=None):
    """A builder of ``rec``'s write, rebuilt from its spec (same stage and chunks) so the
    kernels can be timed; into a temporary store, removed after, when ``store`` is None.

    Yields the builder and the layer-name prefixes of the ground-truth variables."""
    from ..simulate import simulate

    steps_run = list(rec.dataset.attrs["steps_run"])
    until = steps_run[-1] if steps_run else None
    chunks = rec.observed.chunks[0] if rec.observed.chunks is not None else None

    def build():
        again = simulate(rec.spec, until=until, chunks=chunks)
        return write_recording_lazily(again, where, mode="w")

    truth = dict.fromkeys(("truth", *map(str, rec.dataset.variables)), "ground truth")
    if store is not None:
        where = store
        yield build, truth
        return
    with tempfile.TemporaryDirectory(prefix="minisim-profile-") as tmp:
        where = Path(tmp) / "profile.zarr"
        yield build, truth


def _zarr_target(where):
    return where if isinstance(where, Path) else str(where)


def _nothing() -> None:
    return None


def _finish(store, storage_options, replaces, _written) -> None:
    """Record what the store holds, flag it complete, and swap it in if it replaces one."""
    _mark_complete(store, storage_options)
    if replaces is not None:
        old = sibling(replaces, OLD_INFIX)
        os.rename(replaces, old)
        os.rename(store, replaces)  # a kill between the renames is undone by the next look
        remove_path(old)


def _flag_incomplete(store, storage_options) -> None:
    group = zarr.open_group(
        _zarr_target(store), mode="r+", zarr_format=3, storage_options=storage_options
    )
    group.attrs.update({COMPLETE_ATTR: False, UNFINISHED_ATTR: UNFINISHED_NOTE})


def _clear(store, storage_options) -> None:
    """Delete a minisim store (the caller has checked that it is one)."""
    if isinstance(store, Path):
        remove_path(store)
    else:
        fs, path = _fs(store, storage_options)
        fs.rm(path, recursive=True)


def _same_version(store, storage_options) -> bool:
    return (_root_attrs(store, storage_options) or {}).get("minisim_version") == __version__


def _check_same_spec(store, storage_options, ds: xr.Dataset) -> None:
    attrs = _root_attrs(store, storage_options) or {}
    if attrs.get("cache_key") == ds.attrs["cache_key"]:
        return
    changed = spec_differences(attrs.get("spec", "{}"), ds.attrs["spec"])
    raise ValueError(
        f"cannot resume {store}: it holds a different spec (stored cache key "
        f"{attrs.get('cache_key')}, yours {ds.attrs['cache_key']}; differing fields: "
        f"{', '.join(changed) or 'unknown'}); it was left untouched. Write it with mode='w' "
        "(CLI: without --resume) to replace it, or choose another path"
    )


def spec_differences(stored_json: str, new_json: str, limit: int = 6) -> list[str]:
    """Dotted paths (with both values) where two specs' JSON differ."""

    def flatten(value, prefix=""):
        if isinstance(value, dict):
            for key, item in value.items():
                yield from flatten(item, f"{prefix}.{key}" if prefix else key)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                label = item.get("kind", i) if isinstance(item, dict) else i
                yield from flatten(item, f"{prefix}.{label}")
        else:
            yield prefix, value

    try:
        old, new = dict(flatten(json.loads(stored_json))), dict(flatten(json.loads(new_json)))
    except ValueError:
        return []
    diffs = [f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in sorted(old.keys() | new.keys())
             if old.get(k) != new.get(k)]  # fmt: skip
    return diffs[:limit] + ([f"{len(diffs) - limit} more"] if len(diffs) > limit else [])


def _resume(ds: xr.Dataset, store, storage_options) -> list:
    """Lazy writes of whatever an interrupted write left out."""
    group = zarr.open_group(
        _zarr_target(store), mode="r", zarr_format=3, storage_options=storage_options
    )
    _check_same_spec(store, storage_options, ds)
    stored = group["observed"].chunks[0]
    if ds["observed"].chunks[0][0] != stored:  # results never depend on chunks: re-cut
        ds = ds.chunk({"frame": stored})
        for name in ds.variables:
            ds[name].encoding = {"compressors": chunk_compressors()}
    bounds = _frame_bounds(ds)
    present = _present_keys(group)
    missing = [k for k in range(len(bounds) - 1) if not _frame_chunk_written(group, ds, k, present)]
    framed = ds.drop_vars([v for v in ds.variables if "frame" not in ds[v].dims])
    static = [v for v in ds.variables if "frame" not in ds[v].dims and v not in ds.dims]
    writes = [
        framed.isel(frame=slice(bounds[k], bounds[k + 1])).to_zarr(
            _zarr_target(store),
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
            only.to_zarr(
                _zarr_target(store), mode="r+", compute=False, **_zarr_options(storage_options)
            )  # fmt: skip
        )
    return writes


def _frame_bounds(ds: xr.Dataset) -> list[int]:
    bounds = [0]
    for size in ds["observed"].chunks[0]:
        bounds.append(bounds[-1] + size)
    return bounds


def _present_keys(group) -> set[str]:
    return list_keys(group.store)


def _frame_chunk_written(group, ds: xr.Dataset, k: int, present: set[str]) -> bool:
    """Is every chunk of frame chunk k present, in every array with a frame axis?"""
    for name in ds.variables:
        dims = ds[name].dims
        if "frame" not in dims or name == "frame":
            continue
        array = group[name]
        ranges = [range(math.ceil(s / c)) for s, c in zip(array.shape, array.chunks, strict=True)]
        ranges[dims.index("frame")] = range(k, k + 1)
        for index in itertools.product(*ranges):
            if f"{name}/c/{'/'.join(map(str, index))}" not in present:
                return False
    return True


def _mark_complete(store, storage_options) -> None:
    group = zarr.open_group(
        _zarr_target(store), mode="r+", zarr_format=3, storage_options=storage_options
    )
    extra = {}
    if "focal_depth_um" in group and group["focal_depth_um"].ndim == 0:
        extra["focal_depth_um"] = float(group["focal_depth_um"][()])
    attrs = {**dict(group.attrs), **extra, CONTENTS_ATTR: contents_of(group), COMPLETE_ATTR: True}
    attrs.pop(UNFINISHED_ATTR, None)
    group.attrs.put(attrs)
    # Consolidated metadata lets plain xr.open_zarr(path) open the store in one read.
    # Zarr warns that consolidation is not (yet) in the v3 spec; xarray reads it fine,
    # and the store stays readable without it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(group.store, zarr_format=3)


# -- reading ----------------------------------------------------------------------------------


def is_complete(store, storage_options=None, *, same_version: bool = False) -> bool:
    """Does ``store`` hold a finished recording (written by this minisim version, if asked)?

    Results may change between versions, so caches and archives treat a store written by
    another version as missing and simulate it again.
    """
    attrs = _root_attrs(target(store), storage_options)
    if not _is_minisim(attrs):
        return False
    if same_version and attrs.get("minisim_version") != __version__:
        return False
    return bool(attrs.get(COMPLETE_ATTR, False))


def _strict_store(store, storage_options) -> StrictStore:
    where = target(store)
    if isinstance(where, Path):
        base = LocalStore(where, read_only=True)
    else:
        base = FsspecStore.from_url(where, storage_options=storage_options, read_only=True)
    return StrictStore(base)


def _open_checked_group(store, storage_options):
    """The root group of a complete minisim store whose listing holds every chunk."""
    where = target(store)
    attrs = _root_attrs(where, storage_options)
    if attrs is None:
        raise FileNotFoundError(f"{store}: no minisim store there (no Zarr v3 group found)")
    if not _is_minisim(attrs):
        raise ValueError(f"{store} is a Zarr store that minisim did not write")
    if not attrs.get(COMPLETE_ATTR, False):
        raise IncompleteStoreError(
            f"{store} is incomplete: its write was interrupted. Finish it with "
            "simulate(spec).to_zarr(path, mode='resume') or rewrite it with mode='w'"
        )
    version = attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{store} has format_version={version!r}, this minisim reads {FORMAT_VERSION}: "
            "re-simulate it from its spec (the attrs' 'spec' JSON) with this version"
        )
    strict = _strict_store(store, storage_options)
    check_contents(strict, attrs.get(CONTENTS_ATTR), store)
    return strict, attrs


def open_recording(store, *, storage_options=None):
    """Reopen a stored recording lazily (nothing is read until asked).

    Before returning, the store's listing is checked against the contents its completion
    recorded (no chunk is read). Every later read is checksummed and names the variable and
    chunk if it fails.

    Raises
    ------
    IncompleteStoreError
        If the write never finished.
    ~minisim.io.integrity.DamagedStoreError
        If an array or chunk is missing, or (when read) a chunk fails its checksum.
    ValueError
        If the store was written by an incompatible format version.
    """
    from ..recording import Recording, load_spec_quietly

    strict, attrs = _open_checked_group(store, storage_options)
    ds = xr.open_zarr(strict, zarr_format=3, consolidated=True, chunks=None)
    group = zarr.open_group(strict, mode="r", zarr_format=3)
    where = str(store)
    checked = {  # index coordinates are already in memory
        name: var.copy(data=checked_array(group[name], name, where))
        for name, var in ds.variables.items()
        if name not in ds.dims
    }
    ds = ds.assign_coords({n: v for n, v in checked.items() if n in ds.coords})
    ds = ds.assign({n: v for n, v in checked.items() if n in ds.data_vars})
    spec = load_spec_quietly(attrs["spec"])
    if attrs.get("minisim_version") != __version__:
        warnings.warn(
            f"{store} was written by minisim {attrs.get('minisim_version')}, this is "
            f"{__version__}: re-simulating its spec may not give the same bytes",
            RecordingFormatWarning,
            stacklevel=2,
        )
    if spec.cache_key() != attrs.get("cache_key"):
        warnings.warn(
            f"{store}: spec hash mismatch (stored {attrs.get('cache_key')}, spec hashes to "
            f"{spec.cache_key()}); loading anyway",
            RecordingFormatWarning,
            stacklevel=2,
        )
    hidden = (COMPLETE_ATTR, CONTENTS_ATTR)
    ds = ds.drop_attrs(deep=False).assign_attrs(
        {k: v for k, v in ds.attrs.items() if k not in hidden}
    )
    text = {n: v.values.astype(str) for n, v in ds.coords.items() if v.dtype == object}
    ds = ds.assign_coords(text)
    return Recording(ds)


def verify(store, *, storage_options=None, progress: bool = True):
    """Read and check every chunk of a stored recording.

    Returns a :class:`~minisim.io.integrity.VerifyReport` (``report.ok``, ``str(report)``
    lists the damaged variables and chunks). Raises if the store is not a complete minisim
    store at all.
    """
    from .integrity import DamagedStoreError, VerifyReport

    try:
        strict, attrs = _open_checked_group(store, storage_options)
    except DamagedStoreError:
        strict = _strict_store(store, storage_options)
        attrs = _root_attrs(target(store), storage_options)
    contents = attrs.get(CONTENTS_ATTR)
    if contents is None:
        report = VerifyReport(str(store))
        report.damaged["(store)"] = ["no contents record: not written by this minisim version"]
        return report
    group = zarr.open_group(strict, mode="r", zarr_format=3, use_consolidated=False)
    return verify_group(group, contents, store, progress)
