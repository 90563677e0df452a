"""What a spec may ask for: physical bounds, and the size of the work, checked before any.

Two kinds of limit live here:

* **Fixed limits** (:func:`check_spec_size`, run by ``Spec`` validation, so a JSON spec
  fails when it is loaded): physical bounds that hold for any brain and any microscope,
  and sizes beyond what a recording can reasonably hold on any machine (frames, pixels,
  cells, packing). They never depend on the machine, so a spec valid here is valid
  everywhere.
* **Machine limits** (:func:`check_machine`, run by ``simulate()`` before any step
  builds): the task-graph size for the chosen chunks and the memory the build needs
  eagerly (cell footprints, static fields, per-frame ground truth) against the memory
  this machine has available.

Every message names the field, the value, the rule and the fix.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from .acquisition import MAX_FRAMES
from .errors import LimitError, SpecWarning, user_stacklevel

#: Sensor side: beyond any scientific camera (a 16384² float32 frame is already 1 GiB,
#: and chunks hold whole frames).
MAX_SENSOR_SIDE_PX = 16_384
#: Simulated canvas (field of view plus motion margin), in pixels per frame: 1 GiB of
#: float32 work per frame.
MAX_CANVAS_PX = 2**28
#: Frames of one recording (``acquisition.MAX_FRAMES``): 10⁷ frames is 5.8 days at 20 fps;
#: every per-frame ground-truth coordinate (time, shifts, drivers) is held in memory whole.
#: Cells of one recording: each cell's footprint is drawn eagerly while the graph is built
#: (about 2 ms per cell, so 500 000 cells take some 15 minutes before any frame).
MAX_CELLS = 500_000
#: Spacing cells by rejection sampling compares each candidate with every accepted cell.
MAX_SPACED_CELLS = 50_000
#: Above this many cells building is slow enough to warn.
SLOW_CELLS = 100_000
#: Frame chunks of one recording: the graph has ~17 tasks per chunk, and past 10⁵ chunks
#: building it and scheduling it take longer than the work.
MAX_FRAME_CHUNKS = 100_000
#: Somata are solid: their total volume cannot exceed the tissue's. Random close packing
#: of spheres fills 64 %; denser than that, cells overlap.
MAX_SOMA_VOLUME_FRACTION = 1.0
DENSE_SOMA_VOLUME_FRACTION = 0.64
#: Share of the machine's available memory the eager part of a build may take.
EAGER_MEMORY_SHARE = 0.8

UM3_PER_MM3 = 1e9


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


@dataclass(frozen=True)
class SizeEstimate:
    """What a spec will build: counts, and the bytes held in memory while building."""

    n_frames: int
    fov_shape: tuple[int, int]
    canvas_shape: tuple[int, int]
    n_cells: int
    #: Bytes held eagerly while building, by what holds them.
    eager_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def canvas_px(self) -> int:
        return self.canvas_shape[0] * self.canvas_shape[1]

    @property
    def total_eager_bytes(self) -> int:
        return sum(self.eager_bytes.values())

    def describe(self) -> str:
        parts = ", ".join(f"{k} {_gib(v)}" for k, v in self.eager_bytes.items() if v)
        return f"{_gib(self.total_eager_bytes)} ({parts})"


def margin_px(spec) -> int:
    acq = spec.acquisition
    return max((step.margin_px(acq) for step in spec.steps), default=0)


def estimate(spec) -> SizeEstimate:
    """Counts and eager memory of a spec, from its fields alone (nothing is built)."""
    from .steps.place_neurons import population_count

    acq = spec.acquisition
    fov = acq.fov_shape
    margin = margin_px(spec)
    canvas = (fov[0] + 2 * margin, fov[1] + 2 * margin)
    px = acq.pixel_size_um
    canvas_um = (canvas[0] * px, canvas[1] * px)
    n_frames = acq.n_frames
    canvas_px = canvas[0] * canvas[1]
    eager: dict[str, int] = {}

    n_cells = 0
    footprint_bytes = 0
    place = spec.step("place_neurons")
    if place is not None:
        for pop in place.population_list():
            count = (
                len(pop.positions_um)
                if pop.positions_um is not None
                else population_count(pop, canvas_um)
            )
            n_cells += count
            half = pop.soma_radius_um * (1 + pop.irregularity) / px + 1
            if pop.morphology == "cytosolic":
                half = max(half, (pop.dendrite_length_um * 1.25 + pop.dendrite_width_um) / px + 2)
            side = min(2 * half + 2, canvas[0]) * min(2 * half + 2, canvas[1])
            # planted patches, the observed ones and their coarse levels: about three copies
            footprint_bytes += count * int(side) * 4 * 3
    eager["cell footprints"] = footprint_bytes

    activity = spec.step("cell_activity")
    if activity is not None and n_cells:
        burn_in = math.ceil(6.0 * activity.tau_decay_s * acq.fps)
        # the burn-in runs as one block: gate, uniforms, spikes and two exponentials
        eager["activity burn-in"] = burn_in * n_cells * 8 * 6

    canvas_arrays = 0
    neuropil = spec.step("neuropil")
    if neuropil is not None:
        canvas_arrays += 2 * neuropil.n_components  # float64 truth + the float32 recipe
    vessels = spec.step("vasculature")
    if vessels is not None and vessels.enabled:
        canvas_arrays += 4 * len(vessels.layers)  # mask, blur and shading per layer
    eager["canvas fields"] = canvas_px * 8 * canvas_arrays
    eager["static fields"] = fov[0] * fov[1] * 8 * 3
    per_frame = 4 + (neuropil.n_components if neuropil is not None else 0)
    eager["per-frame ground truth"] = n_frames * 8 * per_frame
    return SizeEstimate(n_frames, fov, canvas, n_cells, eager)


def check_spec_size(spec) -> SizeEstimate:
    """Raise :class:`LimitError` (a ``ValueError``) if the spec asks for more than any
    machine can build; machine-independent, so it runs when a spec is validated."""
    from .steps.place_neurons import population_count

    acq = spec.acquisition
    sensor = acq.image_sensor
    for name in ("n_px_height", "n_px_width"):
        value = getattr(sensor, name)
        if value > MAX_SENSOR_SIDE_PX:
            raise LimitError(
                f"acquisition.image_sensor.{name}={value} exceeds {MAX_SENSOR_SIDE_PX} px per "
                f"side (no scientific camera is larger; one float32 frame would be "
                f"{_gib(sensor.n_px_height * sensor.n_px_width * 4)}): use a coarser pixel "
                "(larger pixel_pitch_um or lower magnification) for a wide field"
            )
    n_frames = acq.n_frames
    if n_frames > MAX_FRAMES:
        raise LimitError(
            f"acquisition.duration_s·fps = {acq.duration_s:g} s · {acq.fps:g} Hz = {n_frames:,} "
            f"frames exceeds {MAX_FRAMES:,} frames per recording (per-frame ground truth "
            f"alone would hold {_gib(n_frames * 8 * 4)} in memory): split into sessions of "
            f"at most {MAX_FRAMES:,} frames (seeds differ per session)"
        )
    margin = margin_px(spec)
    fov = acq.fov_shape
    canvas = (fov[0] + 2 * margin, fov[1] + 2 * margin)
    if canvas[0] * canvas[1] > MAX_CANVAS_PX:
        raise LimitError(
            f"the simulated canvas is {canvas[0]:,}×{canvas[1]:,} px (the {fov[0]}×{fov[1]} px "
            f"field plus a motion margin of {margin:,} px per side) which exceeds "
            f"{MAX_CANVAS_PX:,} px per frame: lower brain_motion.max_shift_um (or the "
            "trajectory's reach), or image_sensor.n_px_height/n_px_width, or use a coarser pixel"
        )
    place = spec.step("place_neurons")
    if place is not None:
        for i, pop in enumerate(place.population_list()):
            _check_packing(pop, i if place.populations is not None else None)
    size = estimate(spec)
    if size.n_cells > SLOW_CELLS and size.n_cells <= MAX_CELLS:
        warnings.warn(
            f"place_neurons: {size.n_cells:,} cells; drawing their footprints takes about "
            f"{size.n_cells * 2e-3 / 60:.0f} min before any frame: lower density_per_mm3 or "
            "narrow depth_range_um if that is not what you meant",
            SpecWarning,
            stacklevel=user_stacklevel(),
        )
    if place is not None:
        px = acq.pixel_size_um
        canvas_um = (size.canvas_shape[0] * px, size.canvas_shape[1] * px)
        for pop in place.population_list():
            if pop.min_distance_um > 0 and pop.positions_um is None:
                count = population_count(pop, canvas_um)
                if count > MAX_SPACED_CELLS:
                    raise LimitError(
                        f"place_neurons: min_distance_um={pop.min_distance_um:g} spaces "
                        f"{count:,} cells by comparing every pair, more than "
                        f"{MAX_SPACED_CELLS:,} (it would take hours): set min_distance_um=0 "
                        "or lower density_per_mm3"
                    )
    if size.n_cells > MAX_CELLS:
        raise LimitError(
            f"place_neurons: density_per_mm3 × tissue volume gives {size.n_cells:,} cells, more "
            f"than {MAX_CELLS:,} per recording (each footprint is drawn while building, "
            f"~2 ms per cell): lower density_per_mm3, narrow depth_range_um, or tile the field "
            "into several recordings"
        )
    return size


def _check_packing(pop, index) -> None:
    where = "place_neurons" if index is None else f"place_neurons.populations[{index}]"
    if pop.positions_um is not None:
        return
    soma_um3 = 4.0 / 3.0 * math.pi * pop.soma_radius_um**3
    fraction = pop.density_per_mm3 * soma_um3 / UM3_PER_MM3
    if fraction > MAX_SOMA_VOLUME_FRACTION:
        most = MAX_SOMA_VOLUME_FRACTION * UM3_PER_MM3 / soma_um3
        raise LimitError(
            f"{where}: density_per_mm3={pop.density_per_mm3:g} with soma_radius_um="
            f"{pop.soma_radius_um:g} packs somata into {fraction:.3g}× the tissue's volume, "
            f"which is impossible (cells cannot overlap): lower density_per_mm3 below "
            f"{most:.3g} or shrink soma_radius_um"
        )


def check_machine(spec, frame_chunks: tuple[int, ...]) -> SizeEstimate:
    """Raise :class:`LimitError` if building this spec with these chunks would not fit this
    machine: too many chunks for one graph, or more eager memory than is available."""
    if len(frame_chunks) > MAX_FRAME_CHUNKS:
        raise LimitError(
            f"chunks: {spec.acquisition.n_frames:,} frames in chunks of {frame_chunks[0]:,} make "
            f"{len(frame_chunks):,} chunks, more than {MAX_FRAME_CHUNKS:,} for one task graph: "
            "use larger chunks (or chunks=None for automatic sizing), or split into sessions"
        )
    size = estimate(spec)
    available = _available_memory()
    if available is not None and size.total_eager_bytes > EAGER_MEMORY_SHARE * available:
        raise LimitError(
            f"building this spec holds about {size.describe()} in memory before any frame is "
            f"computed, more than {EAGER_MEMORY_SHARE:.0%} of the {_gib(available)} available: "
            "lower density_per_mm3 or neuropil.n_components, shorten duration_s (split into "
            "sessions), or use a smaller field"
        )
    return size


def _available_memory() -> int | None:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return None
    return int(psutil.virtual_memory().available)
