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


def generate(specs: Iterable[Spec], root, *, client=None, chunks=None, storage_options=None,
             progress: bool = False):  # fmt: skip
    """Write many recordings as one batch, each to ``root/<cache_key>.zarr``, plus a manifest.

    ``root`` is a local folder or an fsspec URL (``s3://bucket/archive``, with
    ``storage_options``). Stores that are already complete are skipped, so an interrupted
    archive resumes; a store path holding something minisim did not write is refused before
    any work. All chunk writes run as one computation (on ``client`` if given, else on the
    scheduler in force; ``progress=True`` shows a bar). ``manifest.json`` (swept axes → store) is written last, atomically,
    and only over a manifest minisim wrote.

    Returns the manifest's path (a Path for a local root, else a URL string).
    """

    from .io.outputs import join, local_path
    from .io.progress import compute
    from .io.zarr_store import inspect_target, is_complete, target, write_recording_lazily
    from .simulate import simulate

    if local_path(root) is not None:
        local_path(root).mkdir(parents=True, exist_ok=True)
    manifest = join(root, "manifest.json")
    _check_manifest_target(manifest, storage_options)
    specs = list(specs)
    stores = [join(root, f"{spec.cache_key()}.zarr") for spec in specs]
    for store in stores:  # refuse a path that is not ours before writing anything
        inspect_target(target(store), storage_options)
    entries, writes = [], []
    for spec, store in zip(specs, stores, strict=True):
        key = spec.cache_key()
        entries.append({"store": f"{key}.zarr", "cache_key": key,
                        "axes": getattr(spec, "axes", {})})  # fmt: skip
        if not is_complete(store, storage_options, same_version=True):
            rec = simulate(spec, chunks=chunks)
            writes.append(
                write_recording_lazily(rec, store, mode="resume", storage_options=storage_options)
            )
    if writes:
        compute(writes, progress=progress, client=client)
    _write_manifest(manifest, {"written_by": "minisim", "recordings": entries}, storage_options)
    return manifest


def _is_our_manifest(text: str) -> bool:
    try:
        return json.loads(text).get("written_by") == "minisim"
    except (ValueError, AttributeError):
        return False


def _check_manifest_target(manifest, storage_options) -> None:
    from .io.outputs import refuse

    fs, path = _manifest_fs(manifest, storage_options)
    if fs.exists(path) and not (fs.isfile(path) and _is_our_manifest(fs.cat_file(path).decode())):
        raise refuse(manifest, "it exists and is not a manifest minisim wrote",
                     "choose an archive folder of its own")  # fmt: skip


def _manifest_fs(manifest, storage_options):
    import fsspec

    if isinstance(manifest, Path):
        return fsspec.filesystem("file"), str(manifest)
    return fsspec.core.url_to_fs(manifest, **(storage_options or {}))


def _write_manifest(manifest, content: dict, storage_options) -> None:
    """Atomically: a rename on a local disk, a single object PUT on an object store."""
    from .io.outputs import atomic_file

    text = json.dumps(content, indent=2, default=str)
    if isinstance(manifest, Path):
        with atomic_file(manifest, is_ours=lambda p: _is_our_manifest(p.read_text()),
                         what="manifest") as partial:  # fmt: skip
            partial.write_text(text)
        return
    fs, path = _manifest_fs(manifest, storage_options)
    fs.pipe_file(path, text.encode())
