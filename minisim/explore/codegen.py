"""A spec as Python a user can paste into a script, and the size of what it will write."""

from __future__ import annotations

import re

from pydantic import BaseModel

from ..spec import Spec

__all__ = ["estimate_size", "format_bytes", "spec_to_python"]


def _code(value, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, BaseModel):
        fields = []
        for name, info in type(value).model_fields.items():
            if name == "kind":
                continue
            current = getattr(value, name)
            if current == info.get_default(call_default_factory=True):
                continue
            fields.append(f"{name}={_code(current, indent + 4)}")
        name = type(value).__name__
        one_line = f"{name}({', '.join(fields)})"
        if len(one_line) + indent <= 88:
            return one_line
        inner = ",\n".join(f"{pad}    {f}" for f in fields)
        return f"{name}(\n{inner},\n{pad})"
    if isinstance(value, tuple | list):
        items = [_code(v, indent + 4) for v in value]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) + indent <= 88:
            return one_line
        return "[\n" + "".join(f"{pad}    {item},\n" for item in items) + f"{pad}]"
    return repr(value)


def _classes(value, found: set) -> set:
    if isinstance(value, BaseModel):
        found.add(type(value).__name__)
        for name in type(value).model_fields:
            _classes(getattr(value, name), found)
    elif isinstance(value, tuple | list):
        for item in value:
            _classes(item, found)
    return found


def spec_to_python(spec: Spec) -> str:
    """Python source that rebuilds ``spec`` exactly (fields at their defaults are left out).

    The code imports what it uses from ``minisim`` and ends with ``rec = simulate(spec)``;
    ``exec`` of it gives a ``spec`` equal to the input.
    """
    steps = "".join(f"        {_code(step, 8)},\n" for step in spec.steps)
    parts = [f"    acquisition={_code(spec.acquisition, 4)},\n", f"    seed={spec.seed!r},\n"]
    parts.append(f"    steps=[\n{steps}    ],\n")
    if spec.output != type(spec.output)():
        parts.append(f"    output={_code(spec.output, 4)},\n")
    body = f"spec = Spec(\n{''.join(parts)})\nrec = simulate(spec)\n"
    used = sorted(n for n in _classes(spec, set()) | {"simulate"} if re.search(rf"\b{n}\(", body))
    imports = "from minisim import (\n" + "".join(f"    {n},\n" for n in used) + ")\n"
    return f"{imports}\n{body}"


def estimate_size(spec: Spec) -> dict[str, int | float]:
    """What a recording of ``spec`` holds, before computing anything.

    Returns
    -------
    dict
        ``frames``, ``height``, ``width``, ``bytes_per_pixel`` and ``movie_bytes`` (the
        uncompressed observed movie; ground truth adds little next to it).
    """
    acq = spec.acquisition
    h, w = acq.fov_shape
    if spec.step("sensor") is not None:
        per_pixel = 1 if acq.image_sensor.bit_depth <= 8 else 2
    else:
        per_pixel = 4 if spec.output.store_dtype == "float32" else 8
    return {
        "frames": acq.n_frames,
        "height": h,
        "width": w,
        "bytes_per_pixel": per_pixel,
        "movie_bytes": acq.n_frames * h * w * per_pixel,
    }


def format_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
