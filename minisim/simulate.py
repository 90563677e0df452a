"""simulate(): build the lazy graph of a recording, computing nothing frame-sized."""

from __future__ import annotations

from dask.base import tokenize

from .engine import Scene, normalize_chunks
from .engine.profile import step_timer
from .limits import check_machine, margin_px
from .recording import Recording, assemble
from .spec import Spec
from .steps.context import LightPath

#: What to use instead of minisim 1.0's per-stage timing, which an eager run could do.
PERF_HINT = (
    "simulate() computes nothing (it builds a lazy graph in milliseconds), so there are no "
    "stage timings to record here. Time the computation instead: wrap it in "
    "dask.diagnostics.Profiler (local) or distributed.performance_report (a cluster); the "
    "task names start with the step that made them"
)


def simulate(spec: Spec, *, until: str | None = None, chunks=None, perf=None) -> Recording:
    """Build a recording lazily; it returns at once and computes on demand.

    Parameters
    ----------
    spec : Spec
        What to simulate.
    until : str, optional
        Stop after this stage (a stage name such as ``"cells_only"``, or a step kind).
    chunks : int, dict or None
        Frames per chunk: ``None``/``"auto"`` (dask's ``array.chunk-size`` of float32 work,
        at least two chunks per thread when there are enough frames; see
        :mod:`minisim.engine.chunks`),
        an int, ``{"frame": n}``, or ``-1`` for one chunk. Results do not depend on it.

    perf : not supported
        minisim 1.0's per-stage timer; raises ``TypeError`` with what to use instead.

    Returns
    -------
    Recording
        The movie and its ground truth as one lazy, labelled xarray Dataset.
    """
    if perf is not None:
        raise TypeError(f"simulate(perf=...) is not supported: {PERF_HINT}")
    stop = spec.resolve_stage(until) if until is not None else None
    acq = spec.acquisition
    margin = margin_px(spec)
    fov = acq.fov_shape
    canvas = (fov[0] + 2 * margin, fov[1] + 2 * margin)
    frame_chunks = normalize_chunks(chunks, acq.n_frames, canvas[0] * canvas[1] * 4)
    check_machine(spec, frame_chunks)  # graph size and eager memory, before any step builds
    scene = Scene(
        spec=spec,
        context=LightPath.from_spec(spec),
        seed=spec.seed,
        n_frames=acq.n_frames,
        frame_chunks=frame_chunks,
        fov_shape=fov,
        canvas_shape=canvas,
        token=tokenize(spec.model_dump_json(), frame_chunks),
        fuse_pixels=not spec.output.save_intermediates,  # snapshots share the stages
    )
    steps = list(spec.steps)
    if stop is not None:
        steps = steps[: [s.stage for s in steps].index(stop) + 1]
    for step in steps:
        with step_timer(step.kind):  # a no-op unless a profile is being built
            built = step.build(scene).evolve(steps_run=(*scene.steps_run, step.kind))
        check_outputs(step, scene, built)
        scene = built
        if spec.output.save_intermediates and step.writes_movie and scene.movie is not None:
            scene = scene.evolve(stages={step.stage: scene.movie})
    return assemble(scene)


def check_outputs(step, before: Scene, after: Scene) -> None:
    """A step added exactly what it declares: everything in ``provides`` (when active), and
    nothing it does not declare in ``provides`` or ``may_provide``."""
    added = after.holdings() - before.holdings()
    if after.movie is not None and after.movie is not before.movie:
        added.add(("movie", "observed"))
    cls = type(step)
    declared = {(q.place, q.name) for q in cls.provided_quantities()}
    required = {(q.place, q.name) for q in cls.provided_quantities(optional=False)}
    undeclared = added - declared
    missing = (required - after.holdings()) if step.active else set()
    if undeclared or missing:
        raise RuntimeError(
            f"step {step.kind} ({cls.__module__}.{cls.__name__}) breaks its declared "
            f"outputs: undeclared {sorted(undeclared)}, missing {sorted(missing)}; fix its "
            "build() or its provides/may_provide declaration"
        )


def simulate_video(
    spec: Spec,
    path,
    *,
    until: str | None = None,
    chunks=None,
    chunk_frames: int | None = None,
    **video,
):
    """Simulate and stream straight into a video file in bounded memory.

    Keyword arguments go to :meth:`Recording.write_video` (``vmax``, ``vmin``, ``fps``,
    ``codec``, ``progress``). ``chunk_frames=n`` (minisim 1.0's name) is
    ``chunks={"frame": n}``; the file does not depend on it. Returns the path written.
    """
    if chunk_frames is not None:
        if chunks is not None:
            raise TypeError("pass chunks= or chunk_frames=, not both (they say the same)")
        chunks = {"frame": int(chunk_frames)}
    return simulate(spec, until=until, chunks=chunks).write_video(path, **video)
