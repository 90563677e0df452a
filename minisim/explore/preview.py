"""Any frame of any recording at once: a lazy recording read one frame at a time.

Only the chunk holding a frame is computed, plus (once) the small whole-recording work
it depends on: the cell traces, the motion trajectory, the focal plane. A cache of
computed graph pieces keeps that shared work, so moving to another frame costs one frame
of pixel work — a 30-minute recording scrubs as fast as a 20-second one.
"""

from __future__ import annotations

import math
import sys
import threading
import warnings
from collections import OrderedDict

import numpy as np
from dask.callbacks import Callback

from ..errors import SpecWarning
from ..simulate import simulate
from ..spec import Spec

__all__ = ["FramePreview", "ResultCache", "preview_chunks", "window_spec"]

#: Most frame chunks a preview graph holds: more chunks mean a cheaper frame but a
#: slower graph build on every physics change.
MAX_PREVIEW_CHUNKS = 8192


class ResultCache(Callback):
    """A dask callback keeping computed task results (least recently used first out).

    Within ``with cache:`` any computation reuses results of earlier ones with the same
    task keys. minisim's keys are tokens of the spec and the chunking, so a result is
    only ever reused for the same recording.
    """

    def __init__(self, max_bytes: int = 256 * 2**20):
        super().__init__()
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._data: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def _start(self, dsk):
        for key in set(dsk) & set(self._data):
            self._data.move_to_end(key)
            dsk[key] = self._data[key][0]

    def _posttask(self, key, value, dsk, state, id):
        size = getattr(value, "nbytes", None)
        if not isinstance(size, int):
            size = sys.getsizeof(value)
        if key in self._data or size > self.max_bytes // 4:
            return
        self._data[key] = (value, size)
        self.nbytes += size
        while self.nbytes > self.max_bytes and self._data:
            _, (_, dropped) = self._data.popitem(last=False)
            self.nbytes -= dropped


def window_spec(spec: Spec, window_px: int | None) -> Spec:
    """The spec seen through a centred sensor window of at most ``window_px`` pixels a side.

    Same pixel size, optics, duration and steps: a smaller field of view (cells are
    placed for that field, so it is a preview of the physics, not a crop of the full
    recording). ``None`` returns the spec unchanged.
    """
    sensor = spec.acquisition.image_sensor
    if window_px is None or (sensor.n_px_height <= window_px and sensor.n_px_width <= window_px):
        return spec
    smaller = sensor.model_copy(
        update={
            "n_px_height": min(sensor.n_px_height, int(window_px)),
            "n_px_width": min(sensor.n_px_width, int(window_px)),
        }
    )
    acq = spec.acquisition.model_copy(update={"image_sensor": smaller})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        return Spec.model_validate(spec.model_copy(update={"acquisition": acq}).model_dump())


def preview_chunks(n_frames: int) -> int:
    """Frames per chunk for previews: one, unless that makes too many chunks."""
    return max(1, math.ceil(n_frames / MAX_PREVIEW_CHUNKS))


class FramePreview:
    """Frame-at-a-time view of a spec's recording (lazy; thread-safe).

    Parameters
    ----------
    spec : Spec
        What to preview.
    window_px : int, optional
        Preview through a centred window of at most this many pixels a side
        (:func:`window_spec`); the default is the full field of view.
    cache_bytes : int
        Memory for kept intermediate results.

    Examples
    --------
    >>> preview = FramePreview(spec)               # doctest: +SKIP
    >>> frame = preview.frame(12_000)              # only that frame's chunk is computed
    """

    def __init__(self, spec: Spec, *, window_px: int | None = None, cache_bytes=256 * 2**20):
        self.spec = window_spec(spec, window_px)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpecWarning)
            self.recording = simulate(
                self.spec, chunks=preview_chunks(self.spec.acquisition.n_frames)
            )
        self.cache = ResultCache(cache_bytes)
        self._lock = threading.Lock()

    @property
    def n_frames(self) -> int:
        return self.spec.acquisition.n_frames

    def _compute(self, *objects):
        import dask

        with self._lock, self.cache:
            return dask.compute(*objects, scheduler="threads")

    def _frame_index(self, t: int) -> int:
        t = int(t)
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} is outside the recording's 0..{self.n_frames - 1}")
        return t

    def frame(self, t: int) -> np.ndarray:
        """The observed frame ``t`` (counts with a sensor, intensity without)."""
        (value,) = self._compute(self.recording.observed.data[self._frame_index(t)])
        return np.asarray(value)

    def stage_frame(self, t: int, until: str) -> np.ndarray:
        """Frame ``t`` of the movie as it is after stage ``until`` (the same run's scene)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpecWarning)
            rec = simulate(self.spec, until=until, chunks=preview_chunks(self.n_frames))
        (value,) = self._compute(rec.observed.data[self._frame_index(t)])
        return np.asarray(value)

    def max_projection(self, t: int = 0, span: int = 40) -> np.ndarray:
        """Maximum over the ``span`` frames starting near ``t`` (clipped to the recording)."""
        start = min(max(int(t) - span // 2, 0), max(self.n_frames - span, 0))
        stop = min(start + span, self.n_frames)
        (value,) = self._compute(self.recording.observed.data[start:stop].max(axis=0))
        return np.asarray(value)

    def shift(self, t: int) -> tuple[float, float]:
        """The true (dy, dx) brain shift at frame ``t`` in pixels ((0, 0) without motion)."""
        ds = self.recording.dataset
        if "shift_y" not in ds.coords:
            return (0.0, 0.0)
        t = self._frame_index(t)
        dy, dx = self._compute(ds["shift_y"].data[t], ds["shift_x"].data[t])
        return float(dy), float(dx)

    def cells(self) -> dict[str, np.ndarray]:
        """Per-cell truth for overlays: rest position (px), soma radius (px), depth, flags.

        Keys: ``row``, ``col`` (field-of-view pixels at rest), ``radius_px``, ``depth_um``,
        ``x_um``, ``detectable``, ``in_fov``. Computing it runs the cell-domain work only.
        """
        ds = self.recording.dataset
        acq = self.spec.acquisition
        centers = ds["centers_um"].data
        names = ["detectable", "in_fov"]
        radius = ds["soma_radius_um"].data if "soma_radius_um" in ds.coords else None
        values = self._compute(centers, *(ds[n].data for n in names), radius)
        centers = np.asarray(values[0], float).reshape(-1, 3)
        rows, cols = acq.um_to_index(centers[:, 1], centers[:, 2], acq.fov_shape)
        radius_um = (
            np.asarray(values[-1], float) if radius is not None else np.full(len(centers), 7.0)
        )
        return {
            "row": rows,
            "col": cols,
            "radius_px": radius_um / acq.pixel_size_um,
            "depth_um": centers[:, 0],
            "x_um": centers[:, 2],
            "detectable": np.asarray(values[1], bool),
            "in_fov": np.asarray(values[2], bool),
        }

    def focal_depth_um(self) -> float | None:
        """The resolved focal plane (µm), or None without an optics step."""
        with self._lock, self.cache:
            return self.recording.ground_truth.focal_depth_um
