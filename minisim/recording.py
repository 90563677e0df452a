"""The Recording: one labelled xarray Dataset holding the movie and its ground truth."""

from __future__ import annotations

import warnings
from functools import cached_property

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .engine import Footprints, Scene, constant, map_ranges, recut
from .engine.chunks import items_per_chunk, split_evenly
from .errors import SpecWarning
from .schema import dataset_schema
from .spec import Spec
from .steps.registry import registered_steps
from .version import FORMAT_VERSION, __version__


def load_spec_quietly(text: str) -> Spec:
    """A stored spec, without repeating the SpecWarnings it raised when it was made."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        return Spec.model_validate_json(text)


def _is_per_cell(variable: xr.Variable) -> bool:
    """A per-cell quantity: one value (or one (z, y, x) triple) per cell, never frame-sized."""
    return "cell" in variable.dims and set(variable.dims) <= {"cell", "axis"}


class _CellTable:
    """The cells of one recording, shared by every view of its ground truth.

    Per-cell quantities are small (a few numbers per cell) but, with a sensor, some depend on
    the traces (``detectable``, a lazily resolved focal plane): each lazy read would repeat
    that cell-domain work. The first read of any of them computes them all together, once,
    and keeps them numpy-backed; frame-sized arrays are never touched.
    """

    def __init__(self, dataset: xr.Dataset):
        self.dataset = dataset
        self.loaded = False
        self._in_fov: np.ndarray | None = None

    @property
    def in_fov(self) -> np.ndarray:
        if self._in_fov is None:
            if "in_fov" in self.dataset.variables:
                self._in_fov = np.asarray(self.dataset["in_fov"].values, bool)
            else:  # a Dataset assembled by hand without the flag: every cell is a unit
                self._in_fov = np.ones(self.dataset.sizes.get("cell", 0), bool)
        return self._in_fov

    def load(self) -> xr.Dataset:
        """The Dataset with every per-cell quantity (and lazy scalar) computed, in one pass."""
        if self.loaded:
            return self.dataset
        ds = self.dataset
        lazy = [
            name
            for name, variable in ds.variables.items()
            if isinstance(variable.data, da.Array)
            and (_is_per_cell(variable) or variable.ndim == 0)
        ]
        values = dask.compute(*(ds.variables[name].data for name in lazy)) if lazy else ()
        coords, data_vars = {}, {}
        for name, value in zip(lazy, values, strict=True):
            variable = ds.variables[name]
            target = coords if name in ds.coords else data_vars
            target[name] = xr.Variable(variable.dims, np.asarray(value), variable.attrs)
        self.dataset = ds.assign_coords(coords).assign(data_vars)
        self.loaded = True
        return self.dataset


class GroundTruth:
    """Attribute view of the ground truth inside a recording's Dataset.

    Its **units** are the cells whose planted footprint touches the field of view at rest
    (``in_fov``): the cells a motion-corrected pipeline can find. The margin cells, which
    live outside the field at rest so that motion can bring tissue into view, are in the
    movie's light but not in the units: :attr:`margin` holds them and
    :meth:`including_margin` every simulated cell.

    Per-cell quantities (dims ``("cell",)`` or ``("cell", "axis")``: ``detectable``,
    ``amplitude``, ``centers_um``, …) are computed together on the first read of any of them
    and kept numpy-backed, so repeated reads cost nothing and numpy functions take them
    directly. Frame-sized ones (``C``, ``S``, ``A_planted``, ``A_observed``, the neuropil)
    stay lazy xarray objects: ``.values`` computes one, ``rec.compute()`` everything.
    """

    def __init__(self, dataset: xr.Dataset, cells: str = "in_fov", *, _table=None, _index=None):
        if cells not in ("in_fov", "margin", "all"):
            raise ValueError(f"cells={cells!r}: use 'in_fov' (the units), 'margin' or 'all'")
        self._table = _CellTable(dataset) if _table is None else _table
        self._cells = cells
        self._index = _index  # positions into the recording's cells; None: chosen by `cells`
        self._view: xr.Dataset | None = None
        self._view_loaded = False

    # -- the cells this view presents -------------------------------------------------------

    def _positions(self) -> np.ndarray | None:
        """Positions of this view's cells among all simulated cells (None: all of them)."""
        if self._index is None:
            in_fov = self._table.in_fov
            if self._cells == "all" or (self._cells == "in_fov" and in_fov.all()):
                return None
            self._index = np.flatnonzero(in_fov if self._cells == "in_fov" else ~in_fov)
        return self._index

    @property
    def _ds(self) -> xr.Dataset:
        if self._view is None or (self._table.loaded and not self._view_loaded):
            positions = self._positions()
            base = self._table.dataset
            self._view = base if positions is None else base.isel(cell=positions)
            self._view_loaded = self._table.loaded
        return self._view

    def _loaded(self) -> xr.Dataset:
        self._table.load()
        return self._ds

    def _derived(self, positions: np.ndarray) -> GroundTruth:
        base = self._positions()
        index = positions if base is None else base[positions]
        return GroundTruth(self._table.dataset, "all", _table=self._table, _index=index)

    @property
    def dataset(self) -> xr.Dataset:
        """The Dataset restricted to this view's cells (per-cell values computed)."""
        return self._loaded()

    @property
    def n_units(self) -> int:
        """Number of cells in this view: by default those in the field of view at rest."""
        return self._ds.sizes["cell"]

    @property
    def margin(self) -> GroundTruth:
        """The margin cells: simulated outside the field at rest (their light still leaks in
        through blur and motion), not counted as units."""
        return GroundTruth(self._table.dataset, "margin", _table=self._table)

    def including_margin(self) -> GroundTruth:
        """Every simulated cell, the units first-class and the margin cells alike."""
        return GroundTruth(self._table.dataset, "all", _table=self._table)

    def detectable_subset(self) -> GroundTruth:
        """The ground truth of the detectable cells only (the usual recall denominator).

        Reading the flags computes the per-cell quantities (cell-domain work: the traces'
        extremes, no pixels); per-cell variables are subset, everything else is shared.
        """
        keep = np.asarray(self.detectable.values, bool)
        return self._derived(np.flatnonzero(keep))

    @property
    def n_spikes(self) -> xr.DataArray:
        """(cell,) total spikes of each cell over the recording, numpy-backed.

        The per-cell reduction of the lazy ``S`` people reach for first (ranking cells by
        activity: ``np.argsort(gt.n_spikes)``); computed on first read (cell-domain work,
        no pixels) and kept. Other reductions of lazy arrays: add ``.values``, e.g.
        ``np.argsort(gt.C.max("frame").values)``.
        """
        cached = self.__dict__.get("_n_spikes")
        if cached is None:
            cached = self.__getattr__("S").sum("frame").compute().rename("n_spikes")
            self.__dict__["_n_spikes"] = cached
        return cached

    # -- eager-implementation names ---------------------------------------------------------

    @property
    def planted(self) -> xr.DataArray:
        """Alias of ``A_planted``: the sharp footprints, already cropped to the field of view
        (dense and lazy here; a sparse canvas stack in minisim 1.0)."""
        return self.__getattr__("A_planted")

    @property
    def fov_shape(self) -> tuple[int, int]:
        """(height, width) of the field of view in pixels."""
        return int(self._ds.sizes["y"]), int(self._ds.sizes["x"])

    @property
    def fov_offset(self) -> tuple[int, int]:
        """(top, left) of the field of view on the motion canvas: the motion margin in
        pixels, (0, 0) without brain motion. Footprints here are already in field pixels."""
        from .limits import margin_px

        margin = int(margin_px(load_spec_quietly(self._table.dataset.attrs["spec"])))
        return margin, margin

    @property
    def shifts(self) -> xr.DataArray:
        """(frame, shift_axis) applied (dy, dx) in pixels; positive moves content down/right.

        A motion-correction estimate is its negation.
        """
        if "shift_y" not in self._ds.coords:
            raise AttributeError("ground truth has no 'shifts': the spec has no brain_motion step")
        shifts = xr.concat([self._ds["shift_y"], self._ds["shift_x"]], dim="shift_axis")
        return (
            shifts.assign_coords(shift_axis=["y", "x"])
            .transpose("frame", "shift_axis")
            .rename("shifts")
        )

    @property
    def displacement(self) -> xr.DataArray:
        """(frame, y, x, axis) total displacement of the tissue seen at each pixel, in px.

        The content at pixel p of frame t comes from the rest position p − d(t, p);
        ``axis`` is ``"y"``, ``"x"``. It is the rigid shift (:attr:`shifts`) plus, with
        ``BrainMotion(nonrigid_um=...)``, the non-rigid field, rebuilt on access from the
        stored node time courses (``nonrigid_y``, ``nonrigid_x``) exactly as the warp used
        it. Lazy (8 bytes × 2 per pixel and frame, never stored): slice it, or reduce it
        chunk by chunk, before ``.values``.
        """
        from .steps.nonrigid_motion import displacement_frames, rigid_field_frames

        ds = self._ds
        if "shift_y" not in ds.coords:
            raise AttributeError(
                "ground truth has no 'displacement': the spec has no brain_motion step"
            )
        height, width = self.fov_shape

        def lazy(values):
            data = values.data
            return data if isinstance(data, da.Array) else da.from_array(np.asarray(data))

        n = ds.sizes["frame"]
        chunks = split_evenly(n, items_per_chunk(height * width * 2 * 8))
        shifts = da.stack([lazy(ds["shift_y"]), lazy(ds["shift_x"])], axis=1)
        if "nonrigid_y" in ds.variables:
            func = displacement_frames
            inputs = [(shifts, 0), (lazy(ds["nonrigid_y"]), 0), (lazy(ds["nonrigid_x"]), 0)]
            constants = [np.asarray(ds["node_y"].values), np.asarray(ds["node_x"].values)]
        else:
            func, inputs, constants = rigid_field_frames, [(shifts, 0)], []
        name = "displacement-" + dask.base.tokenize(*(a.name for a, _ in inputs), constants)
        data = map_ranges(
            name, func, chunks, (height, width, 2), np.float64, inputs=inputs,
            constants=[*constants, (height, width)],
        )  # fmt: skip
        return xr.DataArray(
            data,
            dims=("frame", "y", "x", "axis"),
            coords={"frame": ds["frame"], "y": ds["y"], "x": ds["x"], "axis": ["y", "x"]},
            name="displacement",
            attrs={"units": "px", "long_name": "tissue displacement at each pixel"},
        )

    @property
    def amplitude_per_cell(self) -> xr.DataArray:
        return self.__getattr__("amplitude")

    @property
    def focal_depth_um(self) -> float | None:
        """The resolved focal plane in µm (None when the spec has no optics step).

        With a sensor and ``"auto"`` focus it depends on the traces, so the first read
        computes it together with the per-cell quantities (cell-domain work only).
        """
        if "focal_depth_um" in self._ds.attrs:
            return float(self._ds.attrs["focal_depth_um"])
        if "focal_depth_um" in self._ds.coords:
            return float(self._loaded().coords["focal_depth_um"].values)
        return None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        ds = self._ds
        if name in ds.variables and name not in ("observed",) and not name.startswith("stage_"):
            if _is_per_cell(ds.variables[name]):
                return self._loaded()[name]
            return ds[name]
        providers = [c.kind_name() for c in registered_steps()
                     if name in {q.name for q in c.provided_quantities() if q.stored}]  # fmt: skip
        hint = (f": it comes from the {' or '.join(providers)} step, which this recording "
                "does not include") if providers else ""  # fmt: skip
        raise AttributeError(f"ground truth has no {name!r}{hint}")

    def __dir__(self):
        names = [n for n in self._ds.variables if n != "observed" and not n.startswith("stage_")]
        return sorted(set(super().__dir__()) | set(names))

    def __repr__(self) -> str:
        names = ", ".join(
            sorted(n for n in dir(self) if not n.startswith("_") and n in self._ds.variables)
        )
        n_margin = int((~self._table.in_fov).sum())
        what = {"in_fov": "cells in the field at rest", "margin": "margin cells",
                "all": "cells"}[self._cells]  # fmt: skip
        extra = f" (+{n_margin} margin cells)" if self._cells == "in_fov" and n_margin else ""
        return f"<GroundTruth: {self.n_units} {what}{extra}; {names}>"


class Recording:
    """A simulated recording: the observed movie plus the exact truth behind it.

    Everything is lazy until asked: ``rec.observed.values``, ``rec.compute()`` or any
    reduction computes on the dask scheduler in force.
    """

    def __init__(self, dataset: xr.Dataset):
        self.dataset = dataset

    @cached_property
    def spec(self) -> Spec:
        return load_spec_quietly(self.dataset.attrs["spec"])

    @property
    def observed(self) -> xr.DataArray:
        """The (frame, y, x) movie the sensor records."""
        return self.dataset["observed"]

    @property
    def holds_counts(self) -> bool:
        """Is the movie the sensor's integer ADC counts? (False: continuous scene
        intensity, e.g. a spec without a sensor or a recording stopped before it.)"""
        return np.issubdtype(self.dataset["observed"].dtype, np.integer)

    @property
    def ground_truth(self) -> GroundTruth:
        """The ground truth of the cells in the field of view at rest (see :class:`GroundTruth`).

        The same object on every read, so per-cell quantities are computed once.
        """
        cached = self.__dict__.get("_ground_truth")
        if cached is None or cached[0] is not self.dataset:
            cached = (self.dataset, GroundTruth(self.dataset))
            self.__dict__["_ground_truth"] = cached
        return cached[1]

    @property
    def observed_movie(self) -> xr.DataArray:
        """Alias of :attr:`observed` (minisim 1.0's name; dims here are ``frame, y, x``)."""
        return self.observed

    @property
    def snapshots(self) -> dict[str, xr.DataArray]:
        """Stage name → the (lazy) movie after that stage, for the kept snapshots
        (``Output(save_intermediates=True)``); empty otherwise. Same arrays as
        :meth:`stage`, so computing several at once shares the work."""
        return {stage: self.dataset[f"stage_{stage}"] for stage in self.stages}

    def save(self, path, *, mode: str = "w", storage_options=None):
        """Alias of :meth:`to_zarr` (minisim 1.0's name): write a Zarr store.

        The store is this package's layout (not minisim 1.0's); reopen it with
        :meth:`Recording.load` or :func:`minisim.open_recording`.
        """
        return self.to_zarr(path, mode=mode, storage_options=storage_options)

    @staticmethod
    def load(path, *, storage_options=None) -> Recording:
        """Alias of :func:`minisim.open_recording` (minisim 1.0's name): reopen a store
        lazily."""
        from .io.zarr_store import open_recording

        return open_recording(path, storage_options=storage_options)

    @property
    def stages(self) -> list[str]:
        """Names of the stage snapshots kept (``Output(save_intermediates=True)``)."""
        return list(self.dataset.attrs.get("stages", []))

    def stage(self, name: str) -> xr.DataArray:
        """The movie as it was after a stage (kind names and stage names both work)."""
        stage = self.spec.resolve_stage(name)
        if stage not in self.stages:
            raise KeyError(
                f"no snapshot of stage {stage!r}: snapshots are kept with "
                f"Output(save_intermediates=True) for stages that write pixels; "
                f"available: {self.stages}"
            )
        return self.dataset[f"stage_{stage}"]

    def write_video(
        self,
        path,
        *,
        vmax: float | None = None,
        vmin: float = 0.0,
        fps: float | None = None,
        codec: str = "rawvideo",
        progress: bool = True,
    ):
        """Stream the observed movie into a grayscale video file, chunk by chunk.

        The file appears only when whole; an existing file is replaced only if minisim
        wrote it (anything else is refused and left untouched).

        Parameters
        ----------
        path : str or Path
            Output file (``.avi`` or ``.mkv`` for the lossless default codec).
        vmax, vmin : float
            The intensity range mapped to 0–255. With a sensor ``vmax`` defaults to the ADC
            maximum (8-bit counts are then written unchanged); without one it is required,
            since continuous intensity has no natural white point.
        fps : float
            Playback rate (default: the acquisition's frame rate).
        codec : str
            ``"rawvideo"`` (uncompressed 8-bit gray, lossless, default: opens in ImageJ's
            built-in AVI reader), ``"ffv1"`` (lossless, smaller; not read by ImageJ), or any
            codec ffmpeg offers; the FourCC names ``"Y800"`` (= ``"rawvideo"``) and
            ``"MJPG"`` (motion JPEG, lossy) work too.
        """
        from .io.video import write_movie

        spec = self.spec
        if vmax is None:
            if not self.holds_counts:
                raise ValueError(
                    "vmax is required without a sensor step (or when stopping before it): the "
                    "movie is continuous intensity with no ADC range; pass e.g. "
                    "vmax=float(rec.observed.max())"
                )
            vmax = float(spec.acquisition.image_sensor.max_count)
        fps = spec.acquisition.fps if fps is None else fps
        return write_movie(
            self.observed.data, path, fps=fps, vmin=vmin, vmax=vmax, codec=codec, progress=progress
        )

    def to_nwb(self, path, **options):
        """Stream the recording into an NWB file: the movie as a ``OnePhotonSeries`` with
        its device, optical channel and imaging plane from the spec, and the ground truth in
        the ``ophys`` processing module (the ``nwb`` extra; see :mod:`minisim.io.nwb`).

        Options: ``compress`` (gzip, default True), ``excitation_nm``, ``indicator``,
        ``location``, ``subject`` (a ``pynwb.file.Subject``), ``include_margin`` (the margin
        cells too; by default the table holds the cells in the field at rest), ``progress``.
        """
        from .io.nwb import write_nwb

        return write_nwb(self, path, **options)

    def to_tiff(self, path, **options):
        """Stream the movie into an ImageJ-compatible TIFF stack (axes TYX, µm pixel size,
        frame interval), sensor counts as 8/16-bit, float32 without a sensor (the ``tiff``
        extra; see :mod:`minisim.io.tiff`). Options: ``bigtiff``, ``truth`` (the ground
        truth of the cells in the field at rest beside it, ``<stem>_truth.npz``),
        ``include_margin`` (the margin cells too), ``progress``.
        """
        from .io.tiff import write_tiff

        return write_tiff(self, path, **options)

    def to_minian(self, folder, **options):
        """Write minian's layout: one Zarr v2 store per variable (``varr``, ``A``, ``C``,
        ``S``, ``motion``) in ``folder`` (see :mod:`minisim.io.minian`). Options:
        ``videos=True`` adds ``msCam1.avi``, … chunks of 1000 frames; ``include_margin``
        adds the margin cells to the units (the cells in the field at rest); ``progress``.
        """
        from .io.minian import write_minian

        return write_minian(self, folder, **options)

    def to_zarr(self, store, *, mode: str = "w", storage_options=None, progress: bool = False):
        """Stream the recording into a Zarr v3 store, chunk by chunk.

        Parameters
        ----------
        store : str, Path or fsspec URL
            Where to write (``"rec.zarr"``, ``"s3://bucket/rec.zarr"``, ...).
        mode : "w", "w-" or "resume"
            Overwrite a minisim store, fail if the path holds one, or finish an interrupted
            write of the same spec (only missing frame chunks are computed; a complete store
            of another spec is an error naming the fields that differ).
        storage_options : dict, optional
            Passed to fsspec for URLs.
        progress : bool
            Show a progress bar on stderr (dask's, or distributed's on a cluster).

        Returns
        -------
        The store. Chunks are computed by the dask scheduler in force (with a
        ``distributed.Client``, on its workers). The store is flagged complete only after
        its last chunk is written; :func:`minisim.open_recording` refuses incomplete ones.

        Raises
        ------
        minisim.OutputPathError
            If the path holds anything but a minisim store (a folder of other files, a
            file, another program's Zarr store): nothing is changed. Overwriting a complete
            local store is atomic: the new one is written beside it and swapped in when
            complete, so a failed overwrite leaves the old store as it was.
        """
        from .io.zarr_store import write_recording

        return write_recording(
            self, store, mode=mode, storage_options=storage_options, progress=progress
        )

    def expected_counts(self) -> xr.DataArray:
        """The mean count each pixel of this movie reads through the spec's sensor: what
        the average of many noisy read-outs of the same scene converges to (float32).

        For a recording stopped before its sensor, e.g. ``simulate(spec, until="leakage")``
        of a spec that has a ``Sensor``: the same scene the noisy counts come from, so
        ``observed − expected_counts`` of the full recording is the noise, with mean zero.

        Everything static that the sensor adds is in it: the black level, the dark current
        (hot pixels included), the DSNU offset and the PRNU gain map of
        ``Acquisition.image_sensor``, and the half count the ADC's floor takes on average,
        as well as the bending of the mean near 0 and near the top of the ADC range where
        the noise is clipped. Row noise has zero mean and only enters through that
        clipping. See :func:`minisim.steps.sensor.mean_counts` for the closed form.
        Lazy, like the movie.
        """
        from .steps.context import LightPath
        from .steps.sensor import expected

        readout = LightPath.from_spec(self.spec).readout
        if readout is None:
            raise ValueError(
                "expected_counts needs a spec with a Sensor step (it uses its exposure)"
            )
        if self.holds_counts:
            raise ValueError(
                "this recording already holds sensor counts; take the intensity from "
                "simulate(spec, until='leakage') (or the last step before the sensor)"
            )
        movie = self.observed
        counts = expected(
            movie.data, readout, f"sensor-expected-{self.spec.cache_key()}", movie.chunks[0]
        )
        return movie.copy(data=counts).rename("expected_counts")

    def profile(self, store=None):
        """Write this recording once with every step's kernels timed; the time per step.

        Rebuilds the same graph (same spec, stage and chunks) with timed kernels, writes
        it to ``store`` (a temporary store, removed after, when ``None``) with the local
        threaded scheduler, and returns a :class:`~minisim.engine.profile.StepProfile`:
        seconds per step, then writing, ground truth and other, and the wall time. Other
        runs never pay for it: without a profile the graph holds the bare kernels.
        """
        from .engine.profile import run_profiled
        from .io.zarr_store import profiled_write

        with profiled_write(self, store) as (build, truth):
            return run_profiled(build, steps=self.dataset.attrs["steps_run"], labels=truth)

    def compute(self, **kwargs) -> Recording:
        """A recording with every array computed into memory (one pass, shared work)."""
        computed = self.dataset.compute(**kwargs)
        for name in computed.coords:
            if computed.coords[name].ndim == 0:  # lazily resolved scalars become attrs too
                computed.attrs[name] = computed.coords[name].item()
        return Recording(computed)

    def __repr__(self) -> str:
        ds = self.dataset
        return (
            f"<Recording {ds.sizes['frame']} frames × {ds.sizes['y']}×{ds.sizes['x']} px, "
            f"{ds.sizes['cell']} cells, observed {ds['observed'].dtype}, "
            f"key {ds.attrs.get('cache_key')}>"
        )


def assemble(scene: Scene) -> Recording:
    """Turn the final scene into a Recording (all frame-sized arrays stay lazy)."""
    spec = scene.spec
    acq = spec.acquisition
    n, (height, width) = scene.n_frames, scene.fov_shape
    dtype = np.dtype(spec.output.store_dtype)
    movie = scene.fov_movie(dtype)  # black if nothing emitted light
    px = acq.pixel_size_um
    coords = {
        "frame": np.arange(n),
        "time_s": ("frame", da.arange(n, chunks=(scene.frame_chunks,)) / acq.fps),
        "y": np.arange(height),
        "x": np.arange(width),
        "y_um": ("y", (np.arange(height) - (height - 1) / 2) * px),
        "x_um": ("x", (np.arange(width) - (width - 1) / 2) * px),
        "cell": np.arange(scene.n_cells),
        "axis": np.array(["z", "y", "x"]),  # fixed width in memory: its bytes are its letters
    }
    data_vars = {"observed": (("frame", "y", "x"), movie)}
    centers = scene.cells.get("centers_um", np.zeros((0, 3)))
    coords["centers_um"] = (("cell", "axis"), centers)
    coords["depth_um"] = ("cell", centers[:, 0])
    for name, values in scene.cells.items():
        if name != "centers_um":  # every other per-cell value is one number per cell
            coords[name] = ("cell", values)
    detectable = scene.cells.get("detectable")
    if detectable is None:
        detectable = default_detectable(scene)
    in_fov = in_fov_at_rest(scene)
    coords["in_fov"] = ("cell", in_fov)
    coords["detectable"] = ("cell", detectable & in_fov)
    if scene.focal is not None:  # one scalar coordinate, lazy when the traces decide it
        coords["focal_depth_um"] = ((), scene.focal)
    for name, (dims, value) in scene.coords.items():
        coords[name] = (dims, _movie_chunked(scene, name, dims, value))
    planted = scene.footprints.get("planted")
    if planted is None:
        planted = Footprints.from_patches([], scene.canvas_shape)
    data_vars["A_planted"] = (("cell", "y", "x"), dense_footprints(scene, planted, "A_planted"))
    observed_fp = scene.footprints.get("observed")
    data_vars["A_observed"] = (
        ("cell", "y", "x"),
        data_vars["A_planted"][1]
        if observed_fp is None
        else dense_footprints(scene, observed_fp, "A_observed"),
    )
    for name, trace in scene.traces.items():
        # Only these ground-truth writes share trace blocks (the pixel work recomputes
        # what it reads), so a block is freed once the chunks it overlaps are written.
        data_vars[name] = (("cell", "frame"), _movie_chunked(scene, name, ("cell", "frame"), trace))
    for name, (dims, values) in scene.truth.items():
        data_vars[name] = (dims, _movie_chunked(scene, name, dims, values))
    for stage, snapshot in scene.stages.items():
        dims = ("frame", "y", "x") if snapshot.shape[1:] == (height, width) else (
            "frame", "canvas_y", "canvas_x")  # fmt: skip
        data_vars[f"stage_{stage}"] = (dims, snapshot)
    attrs = {
        "spec": spec.model_dump_json(),
        "format_version": FORMAT_VERSION,
        "minisim_version": __version__,
        "cache_key": spec.cache_key(),
        "stages": list(scene.stages),
        "steps_run": list(scene.steps_run),
        **scene.attrs,
    }
    if isinstance(scene.focal, float):  # known at build time: readable without computing
        attrs["focal_depth_um"] = scene.focal
    dataset = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    schema = dataset_schema()
    for name, variable in dataset.variables.items():  # units travel with the values
        if name in schema:
            declared = schema[name]
            variable.attrs.update(units=declared.units, long_name=declared.label)
            if declared.description:
                variable.attrs["description"] = declared.description
    return Recording(dataset)


def _movie_chunked(scene: Scene, name: str, dims, value):
    """Per-frame ground truth cut like the movie, so a chunk of frames and its truth are
    computed and stored together (scans produce it on their own fixed block grid)."""
    dims = (dims,) if isinstance(dims, str) else tuple(dims)
    if not isinstance(value, da.Array) or "frame" not in dims:
        return value
    return recut(value, dims.index("frame"), scene.frame_chunks, scene.layer_name("truth", name))


def default_detectable(scene: Scene):
    """Without a sensor there is no noise floor: a cell with a trace is detectable when in focus."""
    has_trace = "C" in scene.traces
    in_focus = scene.cells.get("in_focus")
    if in_focus is None:
        return np.full(scene.n_cells, has_trace)
    return in_focus & has_trace


def in_fov_at_rest(scene: Scene) -> np.ndarray:
    """Cells whose planted footprint touches the field of view at the rest position.

    With brain motion the canvas holds margin cells too: they may drift into view, but a
    cell whose footprint lies wholly outside the field at rest is never counted detectable.
    """
    planted = scene.footprints.get("planted")
    if planted is None:
        return np.zeros(scene.n_cells, bool)
    return planted.visible_in(*scene.fov_window)


def dense_footprints(scene: Scene, footprints: Footprints, what: str) -> da.Array:
    """Lazy dense (cell, y, x) footprints cropped to the field of view, chunked by cell."""
    height, width = scene.fov_shape
    chunks = split_evenly(scene.n_cells, items_per_chunk(height * width * 4))
    return map_ranges(
        scene.layer_name(what),
        densify_footprints,
        chunks,
        (height, width),
        np.float32,
        constants=[constant(footprints, "footprints"), np.asarray(scene.fov_window)],
    )


def densify_footprints(start: int, stop: int, footprints: Footprints, window) -> np.ndarray:
    return footprints.to_dense(start, stop, tuple(int(v) for v in window))
