"""Parameter sweeps over a base spec, and batch generation of many recordings."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from .spec import Spec


class SweptSpec(Spec):
    """A spec from a sweep; ``axes`` records the swept values (not part of the cache key)."""

    axes: dict[str, Any] = Field(default_factory=dict, exclude=True)


def sweep(base: Spec, axes: Mapping[str, Iterable]) -> Iterator[SweptSpec]:
    """Every combination of the swept values, as validated specs.

    Parameters
    ----------
    base : Spec
        The spec to vary (never modified).
    axes : mapping of dotted path → values
        Paths name nested fields (``"acquisition.optics.na"``), a step's field by its kind
        (``"steps.place_neurons.density_per_mm3"``) or a top-level field (``"seed"``).
        The first path is the outermost loop.

    Yields
    ------
    SweptSpec
        Each combination, re-validated from scratch so every rule applies.
    """
    paths = list(axes)
    swept = {path: list(axes[path]) for path in paths}  # iterables are read once
    for path in paths:
        _check_path(base, path)
        values = swept[path]
        for i, value in enumerate(values):
            if value in values[:i]:
                raise ValueError(
                    f"{path!r}: the value {value!r} is listed twice; each swept value makes one "
                    "recording, so list it once"
                )
    for values in itertools.product(*(swept[p] for p in paths)):
        data = base.model_dump(mode="python")
        for path, value in zip(paths, values, strict=True):
            _assign(data, path, value)
        yield SweptSpec.model_validate({**data, "axes": dict(zip(paths, values, strict=True))})


def _check_path(spec: Spec, path: str) -> None:
    parts = path.split(".")
    if parts[0] == "steps":
        if len(parts) < 3:
            raise ValueError(f"{path!r}: address a step's field as steps.<kind>.<field>")
        step = spec.step(parts[1])
        if step is None:
            kinds = [s.kind for s in spec.steps]
            raise ValueError(
                f"{path!r}: the spec has no step of kind {parts[1]!r} (it has {kinds})"
            )
        _check_fields(step, parts[2:], path)
    else:
        _check_fields(spec, parts, path)


def _check_fields(model, parts: list[str], path: str) -> None:
    for i, part in enumerate(parts):
        if not hasattr(type(model), "model_fields"):
            raise ValueError(
                f"{path!r}: {'.'.join(parts[:i])} is a non-model field; cannot descend"
            )
        if part not in type(model).model_fields:
            raise ValueError(f"{path!r}: unknown field {part!r} of {type(model).__name__}")
        model = getattr(model, part)


def _assign(data: dict, path: str, value) -> None:
    parts = path.split(".")
    if parts[0] == "steps":
        target = next(s for s in data["steps"] if s["kind"] == parts[1])
        parts = parts[2:]
    else:
        target = data
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


def generate(specs: Iterable[Spec], root, *, client=None, chunks=None) -> Path:
    """Write many recordings as one batch, each to ``root/<cache_key>.zarr``, plus a manifest.

    Stores that are already complete are skipped, so an interrupted archive resumes. All
    chunk writes run as one computation (on ``client`` if given, else on the scheduler in
    force). ``manifest.json`` (swept axes → store) is written last, atomically.
    """
    import dask

    from .persist import is_complete, write_recording_lazily
    from .simulate import simulate

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    entries, writes = [], []
    for spec in specs:
        key = spec.cache_key()
        store = root / f"{key}.zarr"
        entries.append({"store": store.name, "cache_key": key, "axes": getattr(spec, "axes", {})})
        if not is_complete(store, same_version=True):
            writes.append(
                write_recording_lazily(simulate(spec, chunks=chunks), store, mode="resume")
            )
    if writes:
        if client is not None:
            client.gather(client.compute(writes))
        else:
            dask.compute(*writes)
    manifest = root / "manifest.json"
    partial = root / ".manifest.json.partial"
    partial.write_text(json.dumps({"recordings": entries}, indent=2, default=str))
    partial.replace(manifest)
    return manifest
