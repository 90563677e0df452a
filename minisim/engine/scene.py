"""The immutable scene that steps extend, one lazy node at a time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import dask.array as da
import numpy as np
from dask import delayed
from dask.base import tokenize
from dask.delayed import Delayed

from .graph import as_delayed, map_ranges
from .read_only import guarded


def _frozen(mapping=None) -> MappingProxyType:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Scene:
    """Everything built so far: small eager arrays and lazy frame-sized ones.

    A step's ``build(scene)`` returns a new Scene; nothing is mutated, so any earlier
    scene (a stage snapshot) stays valid.

    Attributes
    ----------
    spec : object
        The spec being simulated (opaque to the engine).
    context : object
        Facts several steps need, resolved from the whole spec before any step builds
        (opaque to the engine; the steps' ``LightPath``).
    seed : int
        Master seed of the keyed random streams.
    n_frames : int
        Frames in the recording.
    frame_chunks : tuple of int
        The recording's chunking along ``frame``.
    fov_shape, canvas_shape : (int, int)
        Sensor field of view and the tissue canvas (field of view plus motion margin).
    cells : mapping of str → numpy array
        Per-cell values (first axis is the cell).
    footprints : mapping of str → Footprints
        Sparse footprints by role (``"planted"``, ``"observed"``).
    traces : mapping of str → dask array
        Lazy (cell, frame) arrays such as ``C`` and ``S``.
    movie : dask array or None
        Lazy (frame, y, x) movie, canvas-sized until the motion step crops it.
    truth : mapping of str → (dims, data)
        Extra ground-truth variables for the recording's Dataset.
    signals : mapping of str → 1-d dask array
        Per-frame quantities later steps read (not ground truth by themselves), e.g. the
        population's summed calcium.
    steps_run : tuple of str
        Kinds of the steps built so far (``until`` may stop early).
    fuse_pixels : bool
        Whether each pixel layer computes the movie so far inside its own tasks (one task
        per frame chunk does the whole pixel chain, so no scheduler can pile up
        intermediate frames) instead of sharing it. Off when stage snapshots are kept:
        they read the intermediate movies too. The simulation sets it; steps never read it.
    stages : mapping of str → dask array
        Snapshots of the movie after each stage (when requested).
    attrs : mapping
        Scalar facts for the Dataset attrs.
    focal : float, 0-d dask array or None
        The focal plane in µm once the optics resolved it: a number, or a lazy scalar
        when it depends on every frame (the sensor's auto focus). Readers pass it to their
        kernels either way (through ``dask.delayed`` when lazy).
    coords : mapping of str → (dims, values)
        Extra ground-truth coordinates: per frame (the applied shifts) or per pixel (the
        scope's static fields), so they follow the movie when it is sliced.
    """

    spec: Any
    seed: int
    context: Any = field(default=None, kw_only=True)
    n_frames: int
    frame_chunks: tuple[int, ...]
    fov_shape: tuple[int, int]
    canvas_shape: tuple[int, int]
    cells: MappingProxyType = field(default_factory=_frozen)
    footprints: MappingProxyType = field(default_factory=_frozen)
    traces: MappingProxyType = field(default_factory=_frozen)
    movie: da.Array | None = None
    truth: MappingProxyType = field(default_factory=_frozen)
    stages: MappingProxyType = field(default_factory=_frozen)
    attrs: MappingProxyType = field(default_factory=_frozen)
    coords: MappingProxyType = field(default_factory=_frozen)
    signals: MappingProxyType = field(default_factory=_frozen)
    focal: Any = None
    steps_run: tuple[str, ...] = ()
    fuse_pixels: bool = True
    token: str = ""

    @property
    def n_cells(self) -> int:
        centers = self.cells.get("centers_um")
        return 0 if centers is None else len(centers)

    @property
    def margin(self) -> tuple[int, int]:
        """(top, left) offset of the field of view inside the canvas."""
        return (
            (self.canvas_shape[0] - self.fov_shape[0]) // 2,
            (self.canvas_shape[1] - self.fov_shape[1]) // 2,
        )

    @property
    def fov_window(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the field of view on the canvas."""
        return (*self.margin, *self.fov_shape)

    def canvas_movie(self, dtype=np.float32) -> da.Array:
        """The movie so far; lazily black (canvas-sized) if nothing emitted yet."""
        if self.movie is not None:
            return self.movie
        return da.zeros(
            (self.n_frames, *self.canvas_shape),
            dtype=dtype,
            chunks=(self.frame_chunks, *self.canvas_shape),
        )

    def fov_movie(self, dtype=np.float32) -> da.Array:
        """The movie cropped to the field of view; lazily black if nothing emitted yet."""
        height, width = self.fov_shape
        movie = self.canvas_movie(dtype)
        if movie.shape[1:] == (height, width):
            return movie
        top, left = self.margin
        return movie[:, top : top + height, left : left + width]

    # The kernels a step contributes. Each takes the absolute frame range (start, stop)
    # first; the engine decides how its blocks are scheduled, shared or recomputed.

    def pixel_map(self, parts, func, tail_shape, dtype, inputs=(), constants=()) -> da.Array:
        """A pixel kernel over each frame chunk: ``func(start, stop, *input_blocks,
        *constants)`` returns the frames [start, stop), in a layer named after ``parts``.

        With ``fuse_pixels`` the layer is recomputed by its readers, so the next pixel
        layer computes this one (and everything before it) inside its own task: one task
        per chunk runs the whole pixel chain.
        """
        return self._per_chunk(parts, func, tail_shape, dtype, inputs, constants,
                               recomputed=self.fuse_pixels)  # fmt: skip

    def frame_map(self, parts, func, tail_shape, dtype, inputs=(), constants=()) -> da.Array:
        """A cheap per-frame kernel (a gain, a timestamp, a row offset per frame) over each
        frame chunk; its readers recompute the blocks they need rather than keep them."""
        return self._per_chunk(parts, func, tail_shape, dtype, inputs, constants,
                               recomputed=True)  # fmt: skip

    def _per_chunk(self, parts, func, tail_shape, dtype, inputs, constants, recomputed):
        return map_ranges(
            self.layer_name(*parts),
            func,
            self.frame_chunks,
            tail_shape,
            dtype,
            inputs=inputs,
            constants=constants,
            recomputed=recomputed,
        )

    def statistic(self, parts, func, tail_shape, dtype, inputs=(), constants=()) -> da.Array:
        """A whole-recording kernel: ``func(0, n_frames, *inputs, *constants)`` in one task,
        computed once and shared (a scale over every frame, a mean-one normalization).

        Its layer is named ``<step>-statistic-<rest of parts>``; its inputs should be small
        per-frame values (scan outputs, frame maps), which it recomputes rather than holds.
        """
        step, *rest = parts
        return map_ranges(
            self.layer_name(step, "statistic", *rest),
            func,
            (self.n_frames,),
            tail_shape,
            dtype,
            inputs=inputs,
            constants=constants,
        )

    def cell_call(self, parts, func, *args):
        """``func(*args)`` for small cell-domain work: run now when every argument is
        concrete, else one lazy task named after ``parts`` (when an argument depends on
        frames, e.g. a focal plane chosen from the traces). Dask arrays among ``args``
        are passed as single values."""
        func = guarded(func)  # itself unless built for the read-only check
        lazy = [as_delayed(a) if isinstance(a, da.Array) else a for a in args]
        if not any(isinstance(a, Delayed) for a in lazy):
            return func(*args)
        return delayed(func, pure=True)(*lazy, dask_key_name=self.layer_name(*parts))

    def cell_array(self, parts, value, shape, dtype):
        """A :meth:`cell_call` result as an array: unchanged when concrete, a dask array of
        the given shape and dtype (a layer named after ``parts``) when lazy."""
        if isinstance(value, Delayed):
            dtype = np.dtype(dtype)
            as_array = delayed(np.asarray, pure=True)(value, dtype.str)  # floats become 0-d
            return da.from_delayed(as_array, tuple(shape), dtype=dtype,
                                   name=self.layer_name(*parts))  # fmt: skip
        return value

    def layer_name(self, *parts: str) -> str:
        """A deterministic, unique graph-layer name that starts with the step's name."""
        return "-".join((*parts, tokenize(self.token, *parts)))

    def evolve(self, **changes) -> Scene:
        """A copy with some attributes replaced (mappings are merged, not replaced)."""
        merged = {}
        for key, value in changes.items():
            current = getattr(self, key)
            if isinstance(current, MappingProxyType):
                merged[key] = _frozen({**current, **value})
            else:
                merged[key] = value
        return replace(self, **merged)

    #: The scene's mappings, by the place names quantities use (``minisim.schema``).
    PLACES = ("cells", "footprints", "traces", "signals", "truth", "coords")

    def holdings(self) -> set[tuple[str, str]]:
        """Every (place, name) the scene holds, for checking steps' declared outputs.

        The focal plane is the place ``"focal"`` (an attribute or a lazy scalar); the
        movie is ``("movie", "observed")``.
        """
        held = {(place, name) for place in self.PLACES for name in getattr(self, place)}
        if self.focal is not None:
            held.add(("focal", "focal_depth_um"))
        if self.movie is not None:
            held.add(("movie", "observed"))
        return held

    def with_cells(self, keep: np.ndarray) -> Scene:
        """Drop cells: keep per-cell arrays and footprints of the selected cells only.

        Only valid before any lazy per-cell array exists (cells are chosen eagerly).
        """
        if self.traces:
            raise RuntimeError("cells can only be dropped before traces are built")
        cells = {k: np.asarray(v)[keep] for k, v in self.cells.items()}
        footprints = {k: fp.subset(keep) for k, fp in self.footprints.items()}
        return replace(self, cells=_frozen(cells), footprints=_frozen(footprints))
