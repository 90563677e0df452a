"""A store-backed cache of simulated recordings, keyed by the spec's hash."""

from __future__ import annotations

import os
from pathlib import Path

from .io.outputs import join
from .io.zarr_store import is_complete, open_recording
from .spec import Spec


def cache_dir() -> Path:
    """``$MINISIM_CACHE`` if set, else ``~/.cache/minisim`` (not created here)."""
    return Path(os.environ.get("MINISIM_CACHE", "~/.cache/minisim")).expanduser()


def cache_path(spec: Spec, root=None):
    """Where ``spec``'s recording is cached: ``root/<cache_key>.zarr`` (a Path for a local
    root, a URL string for an fsspec root such as ``s3://bucket/cache``)."""
    return join(root if root is not None else cache_dir(), f"{spec.cache_key()}.zarr")


def simulate_cached(spec: Spec, *, root=None, chunks=None, storage_options=None):
    """Open the cached recording of ``spec``, simulating and storing it on a miss.

    An interrupted earlier write is resumed rather than redone; a path holding something
    minisim did not write is refused, untouched. The returned recording reads lazily from
    the store, verified like any :func:`~minisim.open_recording`.
    """
    from .simulate import simulate

    path = cache_path(spec, root)
    if not is_complete(path, storage_options, same_version=True):
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        simulate(spec, chunks=chunks).to_zarr(path, mode="resume", storage_options=storage_options)
    return open_recording(path, storage_options=storage_options)
