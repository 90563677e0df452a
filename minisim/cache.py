"""A store-backed cache of simulated recordings, keyed by the spec's hash."""

from __future__ import annotations

import os
from pathlib import Path

from .persist import is_complete, open_recording
from .spec import Spec


def cache_dir() -> Path:
    """``$MINISIM_CACHE`` if set, else ``~/.cache/minisim`` (not created here)."""
    return Path(os.environ.get("MINISIM_CACHE", "~/.cache/minisim")).expanduser()


def cache_path(spec: Spec, root=None) -> Path:
    """Where ``spec``'s recording is cached: ``root/<cache_key>.zarr``."""
    return Path(root if root is not None else cache_dir()) / f"{spec.cache_key()}.zarr"


def simulate_cached(spec: Spec, *, root=None, chunks=None):
    """Open the cached recording of ``spec``, simulating and storing it on a miss.

    An interrupted earlier write is resumed rather than redone. The returned recording
    reads lazily from the store.
    """
    from .simulate import simulate

    path = cache_path(spec, root)
    if not is_complete(path, same_version=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        simulate(spec, chunks=chunks).to_zarr(path, mode="resume")
    return open_recording(path)
