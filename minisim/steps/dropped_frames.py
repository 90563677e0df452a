"""Acquisition faults of the DAQ: dropped frames and timestamp jitter.

The scope exposes ``round(duration_s · fps)`` frames at a steady rate, but the DAQ loses
some of them on their way to disk (a full USB buffer, a busy host). The recording then
holds only the frames that arrived: the movie skips in time, and its timestamps show the
gaps. This step removes the lost frames from the movie and from every per-frame ground
truth (traces, shifts, envelopes, stage snapshots), so all of it stays aligned with the
frames a pipeline actually gets, and records which acquisition frame each one is
(``acquired_frame``) and when it was exposed (``time_s``, with the gaps). The DAQ's logged
timestamps (``timestamp_s``) add a jitter to the exact times.

Which frames drop is decided per acquisition frame from one keyed stream, before any
pixel work: the same frames drop whatever the chunking. Each recorded frame comes from
one frame of one chunk of the movie before this step, so dropping frames moves no pixel
data between chunks.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import dask.array as da
import numpy as np
from pydantic import Field, model_validator

from ..engine import Scene, split_evenly, stream, take_frames
from ..schema import Quantity
from .base import StepSpec, warn_spec

KIND = "dropped_frames"

ACQUIRED_FRAME = Quantity(
    "acquired_frame", "coords", "acquisition frame indices", ("frame",), "int64", "index",
    description="Index of each recorded frame among the frames the scope exposed; the "
                "missing indices are the dropped frames.",
)  # fmt: skip
TIMESTAMP = Quantity(
    "timestamp_s", "coords", "the DAQ's timestamps", ("frame",), "float64", "s",
    description="The timestamp the DAQ logged for each recorded frame: time_s plus jitter.",
)  # fmt: skip


class DroppedFrames(StepSpec):
    """Frames lost by the acquisition system, and jitter in its timestamps.

    Each exposed frame except the first is lost with probability ``drop_probability``
    (independently), plus the frames listed in ``dropped``. The recording keeps the rest:
    its ``frame`` dimension counts recorded frames, ``acquired_frame`` says which exposure
    each one is, and ``time_s`` (= ``acquired_frame / fps``) shows the gaps. Every
    per-frame ground truth is cut to the recorded frames.

    Parameters
    ----------
    drop_probability : float
        Chance that the DAQ loses a given frame, in [0, 0.5].
    dropped : tuple of int
        Acquisition frames that are always lost (indices ≥ 1, below the frame count).
    timestamp_jitter_s : float
        Standard deviation of the error of the DAQ's logged timestamps (``timestamp_s``)
        around the true exposure start, in seconds.
    """

    kind: Literal["dropped_frames"] = KIND
    order: ClassVar[float] = 130  # after the sensor (120): the DAQ loses whole read-out frames
    stage_name: ClassVar[str | None] = "dropped_frames"
    provides: ClassVar[tuple] = ("observed", "time_s", ACQUIRED_FRAME, TIMESTAMP)
    writes_movie: ClassVar[bool] = True

    drop_probability: float = Field(0.01, ge=0, le=0.5)
    dropped: tuple[Annotated[int, Field(ge=0)], ...] = ()
    timestamp_jitter_s: float = Field(0.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _sorted_unique(self):
        if 0 in self.dropped:
            raise ValueError(
                "dropped_frames.dropped contains frame 0: the first frame starts the "
                "recording and is always recorded; list frames ≥ 1"
            )
        return self

    def check_in_spec(self, spec) -> None:
        acq = spec.acquisition
        too_late = [f for f in self.dropped if f >= acq.n_frames]
        if too_late:
            raise ValueError(
                f"dropped_frames.dropped={list(too_late)} names frames past the last one "
                f"({acq.n_frames - 1}): list acquisition frames in [1, {acq.n_frames - 1}]"
            )
        if self.timestamp_jitter_s > 0.25 / acq.fps:
            warn_spec(
                f"dropped_frames.timestamp_jitter_s={self.timestamp_jitter_s:g} s is over a "
                f"quarter of the frame period (1/fps = {1 / acq.fps:g} s): logged timestamps "
                "will often run backwards"
            )

    def kept_frames(self, n_frames: int, seed: int) -> np.ndarray:
        """Indices of the acquisition frames that reach the recording (sorted)."""
        lost = stream(seed, KIND, "drops").random(n_frames) < self.drop_probability
        lost[list(self.dropped)] = True
        lost[0] = False
        return np.flatnonzero(~lost)

    def timestamps(self, kept: np.ndarray, fps: float, seed: int, n_frames: int):
        """(exact exposure starts, the DAQ's logged timestamps) of the recorded frames."""
        exact = kept / fps
        if self.timestamp_jitter_s == 0:
            return exact, exact.copy()
        # One draw per acquisition frame, so a frame's jitter does not depend on the drops.
        jitter = stream(seed, KIND, "jitter").standard_normal(n_frames)[kept]
        return exact, exact + self.timestamp_jitter_s * jitter

    def build(self, scene: Scene) -> Scene:
        acq = scene.context.acquisition
        kept = self.kept_frames(scene.n_frames, scene.seed)
        time_s, timestamp_s = self.timestamps(kept, acq.fps, scene.seed, scene.n_frames)
        movie = scene.fov_movie(scene.context.store_dtype)
        # Regular chunks of the requested length (stores need them), now over fewer frames.
        frame_chunks = split_evenly(len(kept), scene.frame_chunks[0])
        recorded = take_frames(movie, 0, kept, frame_chunks, scene.layer_name(KIND, "movie"))

        def cut(name, dims, value):
            dims = (dims,) if isinstance(dims, str) else tuple(dims)
            if "frame" not in dims:
                return dims, value
            axis = dims.index("frame")
            if isinstance(value, da.Array):
                return dims, take_frames(
                    value, axis, kept, frame_chunks, scene.layer_name(KIND, name)
                )
            return dims, np.take(np.asarray(value), kept, axis=axis)

        traces = {
            name: take_frames(trace, 1, kept, frame_chunks, scene.layer_name(KIND, "trace", name))
            for name, trace in scene.traces.items()
        }
        stages = {
            name: take_frames(
                movie_so_far, 0, kept, frame_chunks, scene.layer_name(KIND, "stage", name)
            )
            for name, movie_so_far in scene.stages.items()
        }
        return scene.evolve(
            movie=recorded,
            n_frames=len(kept),
            frame_chunks=frame_chunks,
            traces=traces,
            stages=stages,
            truth={name: cut(name, *value) for name, value in scene.truth.items()},
            coords={
                **{name: cut(name, *value) for name, value in scene.coords.items()},
                "time_s": ("frame", time_s),
                "timestamp_s": ("frame", timestamp_s),
                "acquired_frame": ("frame", kept.astype(np.int64)),
            },
        )
