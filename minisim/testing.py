"""Fixtures and scoring for testing analysis pipelines against minisim's ground truth.

* :func:`make_recording` — a small, fast, deterministic recording (six cells on a
  jittered grid in a 128 µm field at 1 µm/px, 2 s at 20 fps, 8-bit sensor), returned
  lazily like any :func:`minisim.simulate` result.
* :class:`Estimate` — what a pipeline found: footprints ``A`` (aka ``footprints``),
  traces ``C`` (``traces``), activity ``S`` (``activity``), motion correction ``shifts``.
* :func:`score` → :class:`Report` — recall over the *detectable* cells, precision, F1,
  footprint overlap, trace and activity agreement, motion RMSE, with the denominators.
* :func:`benchmark` — a pipeline run over many specs (a sweep), scored into one tidy
  ``xarray.Dataset``, on a ``dask.distributed`` cluster when a client is given.

Stability contract
------------------
What a downstream test may pin, and what it should not:

* **Frozen** (changing any of it is a breaking change, announced in the changelog):
  the arguments and defaults of :func:`make_recording` and the spec they build — the
  cell count is exactly ``n_cells`` and the cells sit exactly at the jittered grid
  positions (``gt.centers_um``), the movie is ``(round(duration_s·fps), n_px, n_px)``
  uint8 counts; the fields of :class:`Estimate` and :class:`Report`, their meanings and
  the defaults of :func:`score`; the metric semantics of :mod:`minisim.metrics`;
  ``DETECT_SNR_THRESHOLD = 3``.
* **Reproducible**: within one minisim version the same arguments give byte-identical
  movies and ground truth, whatever the chunking or the dask scheduler, on any machine.
* **Not frozen**: the exact pixel values, traces and the number of detectable cells may
  change between minisim versions as the physics is refined. Pin those with tolerances
  (``recall == 1`` for a perfect estimate, ``trace_corr > 0.99``, ``shift_rmse < 0.5``)
  and read denominators from the report (``report.n_detectable``) instead of
  hard-coding them; never pin hashes of the movie across versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import xarray as xr

from .acquisition import Acquisition, ImageSensor, Optics
from .engine import stream
from .metrics import (
    activity_similarity,
    global_shift_from_trajectories,
    hungarian_match,
    shift_rmse,
    trace_pearson,
)
from .recording import GroundTruth, Recording
from .simulate import simulate
from .spec import Output, Spec
from .steps import (
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    NeuronPopulation,
    PlaceNeurons,
    Sensor,
)

__all__ = ["Estimate", "Report", "benchmark", "make_recording", "make_spec", "score"]

#: Share of the field (each side) kept free of grid cells, and the grid jitter scale.
GRID_MARGIN_FRACTION = 0.15
GRID_JITTER_FRACTION = 0.15
#: The fixture's sensor pitch (µm); magnification = pitch / pixel size.
FIXTURE_PIXEL_PITCH_UM = 8.0


# --------------------------------------------------------------------------- fixture


def grid_positions(
    n_cells: int, n_px: int, pixel_size_um: float, depth_um: float, seed: int
) -> tuple[tuple[float, float, float], ...]:
    """(z, y, x) µm centres on a jittered grid covering the central 70% of the field.

    ``cols = ceil(√n)``, ``rows = ceil(n/cols)``; each cell is displaced by a uniform
    (dy, dx) of at most ``0.15·usable/max(rows, cols)`` drawn from its own keyed stream.
    """
    cols = math.ceil(math.sqrt(n_cells))
    rows = math.ceil(n_cells / cols)
    usable = (1 - 2 * GRID_MARGIN_FRACTION) * n_px * pixel_size_um
    ys = np.linspace(-usable / 2, usable / 2, rows) if rows > 1 else np.zeros(1)
    xs = np.linspace(-usable / 2, usable / 2, cols) if cols > 1 else np.zeros(1)
    jitter = GRID_JITTER_FRACTION * usable / max(rows, cols)
    positions = []
    for i in range(n_cells):
        dy, dx = stream(seed, "testing", "grid_jitter", i).uniform(-jitter, jitter, 2)
        positions.append((float(depth_um), float(ys[i // cols] + dy), float(xs[i % cols] + dx)))
    return tuple(positions)


def make_spec(
    n_cells: int = 6,
    *,
    n_px: int = 128,
    pixel_size_um: float = 1.0,
    duration_s: float = 2.0,
    fps: float = 20.0,
    seed: int = 0,
    depth_um: float = 50.0,
    focal_depth_um: float | Literal["auto"] = "auto",
    soma_radius_um: float = 5.0,
    morphology: Literal["soma", "cytosolic"] = "soma",
    population: NeuronPopulation | None = None,
    motion: bool | BrainMotion = False,
    activity: CellActivity | None = None,
    sensor: Sensor | None = None,
    extra_steps: Sequence = (),
    save_intermediates: bool = False,
) -> Spec:
    """The spec :func:`make_recording` simulates (same arguments, no ``chunks``)."""
    if not isinstance(n_cells, (int, np.integer)) or isinstance(n_cells, bool) or n_cells < 1:
        raise ValueError(f"n_cells={n_cells!r}: the fixture needs at least one cell (an int ≥ 1)")
    acquisition = Acquisition(
        fps=fps,
        duration_s=duration_s,
        optics=Optics(magnification=FIXTURE_PIXEL_PITCH_UM / pixel_size_um),
        image_sensor=ImageSensor(
            n_px_height=n_px, n_px_width=n_px, pixel_pitch_um=FIXTURE_PIXEL_PITCH_UM
        ),
        focal_depth_in_tissue_um=focal_depth_um,
    )
    if population is None:
        population = NeuronPopulation(
            positions_um=grid_positions(int(n_cells), n_px, pixel_size_um, depth_um, seed),
            soma_radius_um=soma_radius_um,
            morphology=morphology,
        )
    steps = [
        PlaceNeurons(populations=[population]),
        activity if activity is not None else CellActivity(p_quiescent_to_active=0.05),
        CellOptics(),
        Composite(),
        sensor if sensor is not None else Sensor(photons_per_unit=40.0),
    ]
    if isinstance(motion, BrainMotion):
        steps.append(motion)
    elif motion:
        steps.append(BrainMotion())
    steps.extend(extra_steps)
    return Spec(
        acquisition=acquisition,
        seed=seed,
        steps=steps,
        output=Output(save_intermediates=save_intermediates),
    )


def make_recording(
    n_cells: int = 6,
    *,
    n_px: int = 128,
    pixel_size_um: float = 1.0,
    duration_s: float = 2.0,
    fps: float = 20.0,
    seed: int = 0,
    depth_um: float = 50.0,
    focal_depth_um: float | Literal["auto"] = "auto",
    soma_radius_um: float = 5.0,
    morphology: Literal["soma", "cytosolic"] = "soma",
    population: NeuronPopulation | None = None,
    motion: bool | BrainMotion = False,
    activity: CellActivity | None = None,
    sensor: Sensor | None = None,
    extra_steps: Sequence = (),
    save_intermediates: bool = False,
    chunks=None,
) -> Recording:
    """A small, fast, deterministic recording for tests (lazy, like :func:`simulate`).

    Parameters
    ----------
    n_cells : int
        Cells placed exactly, on a jittered grid over the central 70% of the field (≥ 1).
    n_px, pixel_size_um : int, float
        A square ``n_px`` field at ``pixel_size_um`` (8 µm pitch, magnification
        ``8/pixel_size_um``, NA 0.45, default 8-bit sensor noise).
    duration_s, fps : float
    seed : int
        The spec's seed (also keys the grid jitter).
    depth_um, focal_depth_um : float, float or "auto"
        Depth of every cell; focal plane (``"auto"``: the sensor's yield optimum).
    soma_radius_um, morphology : float, "soma" or "cytosolic"
    population : NeuronPopulation, optional
        Used verbatim instead of the grid (``n_cells``, depth, radius and morphology are
        then ignored).
    motion : bool or BrainMotion
        ``True`` adds ``BrainMotion()`` (10 µm, which warns ``SpecWarning`` on the
        128 µm default field); pass a ``BrainMotion`` to choose it.
    activity, sensor : step, optional
        Replace ``CellActivity(p_quiescent_to_active=0.05)`` (a lively gate) and
        ``Sensor(photons_per_unit=40.0)``.
    extra_steps : sequence of steps
        Added to the spec (placed in canonical order).
    save_intermediates : bool
        Keep stage snapshots (``rec.stage(name)``).
    chunks : optional
        Frame chunking, as for :func:`simulate` (results do not depend on it).
    """
    spec = make_spec(
        n_cells,
        n_px=n_px,
        pixel_size_um=pixel_size_um,
        duration_s=duration_s,
        fps=fps,
        seed=seed,
        depth_um=depth_um,
        focal_depth_um=focal_depth_um,
        soma_radius_um=soma_radius_um,
        morphology=morphology,
        population=population,
        motion=motion,
        activity=activity,
        sensor=sensor,
        extra_steps=extra_steps,
        save_intermediates=save_intermediates,
    )
    return simulate(spec, chunks=chunks)


# --------------------------------------------------------------------------- estimate


_ALIASES = {"A": "footprints", "C": "traces", "S": "activity"}


@dataclass(frozen=True, eq=False, init=False)
class Estimate:
    """What an analysis pipeline recovered from a movie.

    Keyword-only; each parameter has two spellings, give one.

    Parameters
    ----------
    A / footprints : (unit, y, x) array-like
        Required. numpy, dask or xarray.
    C / traces : (unit, frame) array-like, optional
        Calcium traces, row ``i`` belonging to footprint ``i``.
    S / activity : (unit, frame) array-like, optional
        Deconvolved activity (spikes), any scale.
    shifts : (frame, 2) array-like, optional
        The motion **correction** applied per frame, (dy, dx) px: the negation of the
        brain's displacement (``gt.shifts``), as registration tools report it.
    """

    A: Any
    C: Any = None
    S: Any = None
    shifts: Any = None

    def __init__(
        self,
        *,
        A=None,
        C=None,
        S=None,
        shifts=None,
        footprints=None,
        traces=None,
        activity=None,
    ):
        given = {"A": (A, footprints), "C": (C, traces), "S": (S, activity)}
        for name, (short, long) in given.items():
            if short is not None and long is not None:
                raise TypeError(
                    f"give {name}= or {_ALIASES[name]}=, not both (they are the same field)"
                )
            object.__setattr__(self, name, short if short is not None else long)
        if self.A is None:
            raise TypeError("Estimate needs the footprints: Estimate(A=...) or footprints=...")
        object.__setattr__(self, "shifts", shifts)

    @property
    def footprints(self):
        return self.A

    @property
    def traces(self):
        return self.C

    @property
    def activity(self):
        return self.S

    def __repr__(self) -> str:
        def shape(x):
            return "None" if x is None else "×".join(map(str, np.shape(x)))

        return (
            f"Estimate(A={shape(self.A)}, C={shape(self.C)}, S={shape(self.S)}, "
            f"shifts={shape(self.shifts)})"
        )


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Report:
    """The score of one estimate against one ground truth.

    Attributes
    ----------
    n_true : int
        The recall denominator: the detectable cells (or, without
        ``restrict_to_detectable``, every unit: each cell whose planted footprint touches
        the field of view at rest; margin cells never count).
    n_est, n_matched : int
        Estimated units; true positives (pairs with similarity ≥ the threshold).
    recall, precision, f1 : float
        ``n_matched/n_true``, ``n_matched/n_est`` (0.0 for an empty denominator) and
        their harmonic mean (0.0 when both are 0).
    mean_overlap : float
        Mean footprint similarity of the true positives (NaN when there are none).
    trace_corr : float
        Median Pearson r of the true positives' traces (NaN without traces or matches).
    activity_corr, activity_variance_explained, activity_scale : float
        Medians of :func:`minisim.activity_similarity` over the true positives (NaN
        without activity or matches).
    shift_rmse : float or None
        Motion RMSE in px after removing the constant offset (None unless both the
        estimate and the truth have shifts).
    n_requested, n_detectable : int
        The ground truth's units (cells in the field of view at rest, ``gt.n_units``),
        and how many of them are detectable.
    match_metric : str
        The footprint similarity used.
    footprint_shift : (int, int)
        Whole-pixel shift applied to the estimated footprints before matching.
    """

    n_true: int
    n_est: int
    n_matched: int
    recall: float
    precision: float
    f1: float
    mean_overlap: float
    trace_corr: float
    activity_corr: float
    activity_variance_explained: float
    activity_scale: float
    shift_rmse: float | None
    n_requested: int
    n_detectable: int
    match_metric: str = "iou"
    footprint_shift: tuple[int, int] = (0, 0)

    def summary(self) -> str:
        """Several lines of text: detection, denominators, traces, activity, motion."""
        lines = [
            f"recall {self.recall:.3f}  precision {self.precision:.3f}  f1 {self.f1:.3f}  "
            f"({self.n_matched} matched of {self.n_est} estimated; "
            f"mean {self.match_metric} {self.mean_overlap:.3f})",
            f"{self.n_detectable} detectable of {self.n_requested} in the field "
            f"(recall denominator = {self.n_true})",
            f"traces: median r = {self.trace_corr:.3f}",
            f"activity: r = {self.activity_corr:.3f}, variance explained = "
            f"{self.activity_variance_explained:.3f}, scale = {self.activity_scale:.3g}",
        ]
        if tuple(self.footprint_shift) != (0, 0):
            dy, dx = self.footprint_shift
            lines.append(f"footprint shift: ({dy}, {dx}) px")
        if self.shift_rmse is not None:
            lines.append(f"motion: RMSE {self.shift_rmse:.3f} px (constant offset removed)")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _nanmedian(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _optional_truth(gt: GroundTruth, name: str):
    try:
        return getattr(gt, name)
    except AttributeError:
        return None


def score(
    estimate: Estimate,
    ground_truth: GroundTruth | Recording,
    *,
    match_metric: str = "iou",
    match_threshold: float = 0.5,
    restrict_to_detectable: bool = True,
    footprint_shift: tuple[int, int] | Literal["auto"] | None = "auto",
) -> Report:
    """Score a pipeline's estimate against the ground truth.

    Parameters
    ----------
    estimate : Estimate
    ground_truth : GroundTruth or Recording
        Reading it never touches the movie: footprints, traces, flags and shifts only,
        so a recording opened lazily from Zarr is scored out of core.
    match_metric : "iou", "weighted_jaccard" or "cosine"
    match_threshold : float
        A matched pair counts as found when its similarity reaches this.
    restrict_to_detectable : bool
        Score against the detectable cells only (``gt.detectable``): recall is then
        "found / findable". With False every unit counts: every cell whose planted
        footprint touches the field of view at rest. Margin cells (outside the field at
        rest, ``gt.margin``) are never in the denominator; to score against them too,
        pass ``ground_truth=rec.ground_truth.including_margin()``.
    footprint_shift : "auto", (dy, dx) or None
        ``"auto"``: when both the estimate and the truth have shifts, the offset implied
        by the trajectories (:func:`minisim.global_shift_from_trajectories`), else
        phase correlation inside :func:`minisim.hungarian_match`. A tuple or None is
        passed through.

    Returns
    -------
    Report
        Footprints are matched against ``A_observed`` (what the scope saw), not the
        sharp planted ones. Per-pair traces and activity are scored over the true
        positives only.
    """
    if isinstance(ground_truth, Recording):
        ground_truth = ground_truth.ground_truth
    gt_all = ground_truth
    n_requested = gt_all.n_units
    n_detectable = int(np.asarray(gt_all.detectable.values, bool).sum())
    gt = gt_all.detectable_subset() if restrict_to_detectable else gt_all
    true_shifts = _optional_truth(gt_all, "shifts")

    shift = footprint_shift
    if (
        isinstance(footprint_shift, str)
        and footprint_shift == "auto"
        and estimate.shifts is not None
        and true_shifts is not None
    ):
        shift = global_shift_from_trajectories(estimate.shifts, true_shifts, correction=True)
    match = hungarian_match(estimate.A, gt.A_observed, metric=match_metric, shift=shift)

    tp = match.matched_pairs(match_threshold)
    n_true, n_est, n_matched = match.n_true, match.n_est, len(tp)
    recall = n_matched / n_true if n_true else 0.0
    precision = n_matched / n_est if n_est else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    overlaps = np.array([match.similarity_matrix[i, j] for i, j in tp], float)
    mean_overlap = float(overlaps.mean()) if tp else float("nan")

    nan = float("nan")
    trace_corr = nan
    true_C = _optional_truth(gt, "C")
    if estimate.C is not None and true_C is not None and tp:
        trace_corr = _nanmedian(trace_pearson(estimate.C, true_C, tp))
    activity = (nan, nan, nan)
    true_S = _optional_truth(gt, "S")
    if estimate.S is not None and true_S is not None and tp:
        act = activity_similarity(estimate.S, true_S, tp)
        activity = tuple(
            _nanmedian(v) for v in (act.correlation, act.variance_explained, act.scale)
        )
    motion = None
    if estimate.shifts is not None and true_shifts is not None:
        motion = shift_rmse(estimate.shifts, true_shifts, correction=True, align=True)

    return Report(
        n_true=n_true,
        n_est=n_est,
        n_matched=n_matched,
        recall=recall,
        precision=precision,
        f1=f1,
        mean_overlap=mean_overlap,
        trace_corr=trace_corr,
        activity_corr=activity[0],
        activity_variance_explained=activity[1],
        activity_scale=activity[2],
        shift_rmse=motion,
        n_requested=n_requested,
        n_detectable=n_detectable,
        match_metric=match_metric,
        footprint_shift=tuple(int(v) for v in match.shift),
    )


# --------------------------------------------------------------------------- benchmark

#: The Report fields a benchmark table holds (numbers only; the shift is split per axis).
BENCHMARK_FIELDS = (
    "recall",
    "precision",
    "f1",
    "mean_overlap",
    "trace_corr",
    "activity_corr",
    "activity_variance_explained",
    "activity_scale",
    "shift_rmse",
    "n_true",
    "n_est",
    "n_matched",
    "n_requested",
    "n_detectable",
)


def _run_one(pipeline: Callable, spec: Spec, chunks, score_options: dict) -> Report:
    rec = simulate(spec, chunks=chunks)
    return score(pipeline(rec), rec.ground_truth, **score_options)


def _run_on_worker(pipeline: Callable, spec: Spec, chunks, score_options: dict) -> Report:
    # A task that computes: leave the worker's thread pool while waiting, so nested
    # computations (the simulation's chunks, the pipeline's own) run on the cluster
    # without deadlocking it. Thread-safe: no global dask configuration is touched.
    from distributed import worker_client

    with worker_client():
        return _run_one(pipeline, spec, chunks, score_options)


def benchmark(
    pipeline: Callable[[Recording], Estimate],
    specs: Iterable[Spec],
    *,
    client=None,
    chunks=None,
    score_options: dict | None = None,
) -> xr.Dataset:
    """Run a pipeline over many specs (e.g. a :func:`minisim.sweep`) and score each run.

    Parameters
    ----------
    pipeline : callable
        ``pipeline(recording) -> Estimate``. It receives the lazy recording and may
        compute what it needs (``rec.observed.values``, or stream over chunks).
    specs : iterable of Spec
        ``SweptSpec.axes`` (the swept values) become coordinates of the table.
    client : distributed.Client, optional
        Run every simulation + pipeline + scoring as one future (``client.submit``), in
        parallel on the cluster; dask computations inside a run (the simulation's
        chunks, the pipeline's own) are submitted to the same cluster from a seceded
        worker thread (``distributed.worker_client``). The pipeline must pickle.
        Without a client the runs are sequential on the scheduler in force.
    chunks : optional
        Frame chunking passed to :func:`simulate`.
    score_options : dict, optional
        Keyword arguments for :func:`score` (``match_metric``, ``match_threshold``, …).

    Returns
    -------
    xarray.Dataset
        One row per spec along a ``run`` dimension, in input order: the numeric Report
        fields as variables (``None`` becomes NaN; the footprint shift is split into
        ``footprint_shift_y``/``_x``), and as coordinates along ``run`` every swept path
        (``"acquisition.optics.na"``, …) plus ``seed`` and ``cache_key``. For a full
        product, ``ds.set_index(run=[paths...]).unstack("run")`` gives one dimension per
        axis.
    """
    specs = list(specs)
    options = dict(score_options or {})
    if client is not None:
        futures = [
            client.submit(_run_on_worker, pipeline, spec, chunks, options, pure=False)
            for spec in specs
        ]
        reports = client.gather(futures)
    else:
        reports = [_run_one(pipeline, spec, chunks, options) for spec in specs]

    data = {}
    for name in BENCHMARK_FIELDS:
        values = [getattr(r, name) for r in reports]
        if name.startswith("n_"):
            data[name] = ("run", np.asarray(values, np.int64))
        else:
            data[name] = ("run", np.asarray([np.nan if v is None else v for v in values], float))
    data["footprint_shift_y"] = ("run", np.asarray([r.footprint_shift[0] for r in reports], int))
    data["footprint_shift_x"] = ("run", np.asarray([r.footprint_shift[1] for r in reports], int))

    paths: list[str] = []
    for spec in specs:
        for path in getattr(spec, "axes", {}) or {}:
            if path not in paths:
                paths.append(path)
    coords: dict[str, Any] = {"run": np.arange(len(specs))}
    for path in paths:
        values = [(getattr(spec, "axes", {}) or {}).get(path, None) for spec in specs]
        coords[path] = ("run", _coordinate(values))
    if "seed" not in coords:
        coords["seed"] = ("run", np.asarray([spec.seed for spec in specs], np.int64))
    coords["cache_key"] = ("run", np.asarray([spec.cache_key() for spec in specs], object))
    match_metric = options.get("match_metric", "iou")
    return xr.Dataset(data, coords=coords, attrs={"match_metric": match_metric})


def _coordinate(values: list) -> np.ndarray:
    """A 1-D coordinate: numeric/str values as such, anything else (tuples, models) as objects."""
    if all(isinstance(v, (bool, int, float, str, np.number)) for v in values):
        return np.asarray(values)
    out = np.empty(len(values), object)
    for i, v in enumerate(values):
        out[i] = tuple(v) if isinstance(v, list) else v
    return out
