"""NWB export: the movie as a ``OnePhotonSeries`` and the ground truth beside it (``nwb`` extra).

Layout of the file (names are the contract; docs/reference/dataset.md maps them):

* ``/acquisition/OnePhotonSeries``: ``observed``, streamed chunk by chunk through an
  ``H5DataIO`` (gzip) so memory stays bounded; its ``Device``, ``OpticalChannel`` and
  ``ImagingPlane`` are filled from the spec (NA, magnification, pixel size, emission
  wavelength, sensor QE / read noise / gain / bit depth, frame rate).
* ``/processing/ophys``: ``ImageSegmentation/PlaneSegmentation`` with one row per cell in
  the field of view at rest (the ground truth's units, what a motion-corrected pipeline can
  find; ``id`` is the recording's ``cell`` index; ``include_margin=True`` adds the margin
  cells simulated around the field, flagged by the ``in_fov`` column) (``image_mask`` = ``A_observed``, ``planted_image_mask`` = ``A_planted`` and every
  per-cell coordinate as a column), ``Fluorescence/C`` (the calcium traces), ``S`` (spike
  counts) and the other per-cell traces as ``RoiResponseSeries``, ``motion_shifts`` (px)
  and the other per-frame truths as ``TimeSeries``, and the static fields in ``Images``.
* ``/general/notes``: the spec JSON, so the file alone reproduces the recording:
  ``simulate(Spec.model_validate_json(nwb.notes))``. ``/general/source_script`` says
  minisim wrote the file; that is how minisim recognises a file it may overwrite.

NWB's image axes are ``(x, y)`` (``ImageSeries.data`` is ``(frame, x, y)``, image masks
``(roi, x, y)``), so minisim's ``(y, x)`` images are transposed on the way in.
"""

from __future__ import annotations

import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .common import SIGNATURE, exported_cells, movie_dtype, require, written_by
from .outputs import atomic_file
from .stream import iter_blocks, progress_bar

#: Bytes per HDF5 chunk of the movie (whole frames).
MOVIE_CHUNK_BYTES = 4 * 2**20
#: The spec does not model the excitation light; this is the usual blue LED of GCaMP
#: miniscopes, used unless the caller names another.
DEFAULT_EXCITATION_NM = 470.0

# The static (y, x) fields of the scope written as images, when present.
STATIC_FIELDS = ("illumination", "vignette", "leakage", "vasculature_mask")


def _libraries():
    require("pynwb", "nwb", "NWB export")
    import pynwb
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from hdmf.data_utils import AbstractDataChunkIterator, DataChunk

    return pynwb, H5DataIO, AbstractDataChunkIterator, DataChunk


def is_minisim_nwb(path: Path) -> bool:
    """An HDF5 file whose ``/general/source_script`` says minisim wrote it."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            text = f["general/source_script"][()]
    except Exception:  # not HDF5, not NWB, or no provenance: not ours
        return False
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).startswith(SIGNATURE)


def _block_iterator_class():
    _, _, AbstractDataChunkIterator, DataChunk = _libraries()

    class BlockIterator(AbstractDataChunkIterator):
        """Hands pynwb one block of a lazy array at a time, transformed on the way."""

        def __init__(self, data, axis, shape, dtype, chunk_shape, transform, bar=None):
            self._blocks = iter_blocks(data, axis)
            self._axis, self._shape, self._dtype = axis, tuple(shape), np.dtype(dtype)
            self._chunk_shape, self._transform, self._bar = tuple(chunk_shape), transform, bar

        def __iter__(self):
            return self

        def __next__(self):
            start, block = next(self._blocks)
            block = np.ascontiguousarray(self._transform(block), dtype=self._dtype)
            if self._bar is not None:
                self._bar.update(block.shape[0])
            selection = tuple(slice(start, start + block.shape[0]) if ax == 0 else slice(None)
                              for ax in range(block.ndim))  # fmt: skip
            return DataChunk(data=block, selection=selection)

        def recommended_chunk_shape(self):
            return self._chunk_shape

        def recommended_data_shape(self):
            return self._shape

        @property
        def dtype(self):
            return self._dtype

        @property
        def maxshape(self):
            return self._shape

    return BlockIterator


def _streamed(data, *, axis, shape, dtype, chunk_shape, transform, bar=None, compress=True):
    """An ``H5DataIO`` that writes ``data`` block by block (compressed unless told not)."""
    _, H5DataIO, _, _ = _libraries()
    iterator = _block_iterator_class()(data, axis, shape, dtype, chunk_shape, transform, bar)
    # gzip level 1: on sensor noise it compresses as well as level 4 (1.44 vs 1.46 on
    # 8-bit counts) at twice the speed (38 vs 17 MB/s on one core).
    options = {"compression": "gzip", "compression_opts": 1} if compress else {}
    return H5DataIO(iterator, chunks=tuple(chunk_shape), **options)


def _yx_to_xy(block):
    return np.swapaxes(block, -1, -2)


def build_nwbfile(
    rec,
    *,
    compress: bool = True,
    excitation_nm: float = DEFAULT_EXCITATION_NM,
    indicator: str = "GCaMP (simulated)",
    location: str = "unknown (simulated tissue)",
    session_start_time: datetime | None = None,
    subject=None,
    include_margin: bool = False,
    bar=None,
):
    """The in-memory ``NWBFile`` of a recording; frame-sized data stay lazy iterators."""
    pynwb, _, _, _ = _libraries()
    from pynwb.base import Images, TimeSeries
    from pynwb.file import Subject
    from pynwb.image import GrayscaleImage
    from pynwb.ophys import (
        Fluorescence,
        ImageSegmentation,
        OnePhotonSeries,
        OpticalChannel,
        RoiResponseSeries,
    )

    ds, spec = rec.dataset, rec.spec
    acq = spec.acquisition
    optics, sensor = acq.optics, acq.image_sensor
    px_um = acq.pixel_size_um
    n_frames, height, width = ds["observed"].shape
    has_sensor = rec.holds_counts
    key = ds.attrs.get("cache_key", spec.cache_key())

    nwb = pynwb.NWBFile(
        session_description=(
            f"Simulated one-photon miniscope recording (minisim spec {key}): the movie and "
            "the exact ground truth that produced it"
        ),
        identifier=str(uuid.uuid4()),
        session_start_time=session_start_time or datetime.now(timezone.utc).astimezone(),
        session_id=key,
        notes=ds.attrs["spec"],
        source_script=f"{written_by()}; the spec JSON is in /general/notes",
        source_script_file_name="minisim",
        keywords=["simulation", "ground truth", "one-photon", "miniscope", "calcium imaging"],
        experiment_description=(
            "Data simulated by minisim; no animal was recorded. Reproduce it with "
            "minisim.simulate(minisim.Spec.model_validate_json(nwbfile.notes))."
        ),
    )
    nwb.subject = subject or Subject(
        subject_id="simulated",
        species="Mus musculus",
        sex="U",
        age="P8W/P16W",
        description=(
            "A simulated adult mouse: the tissue is modelled, no animal was recorded (the age "
            "range is nominal)."
        ),
    )
    description = (
        f"Simulated one-photon miniscope: NA {optics.na}, magnification "
        f"{optics.magnification}x, sensor {sensor.n_px_height}x{sensor.n_px_width} px of "
        f"{sensor.pixel_pitch_um} um pitch ({px_um:.4g} um/px in the tissue), QE "
        f"{sensor.quantum_efficiency}, read noise {sensor.read_noise_e} e-, gain "
        f"{sensor.gain_adu_per_e} ADU/e-, {sensor.bit_depth}-bit ADC"
    )
    if hasattr(nwb, "create_device_model"):  # NWB 2.9: the manufacturer lives on a model
        model = nwb.create_device_model(
            name="minisim miniscope", manufacturer="minisim (simulation)", description=description
        )
        device = nwb.create_device(name="Microscope", description=description, model=model)
    else:  # pragma: no cover - older pynwb
        device = nwb.create_device(
            name="Microscope", description=description, manufacturer="minisim (simulation)"
        )
    channel = OpticalChannel(
        name="OpticalChannel",
        description="Green fluorescence emission of the calcium indicator",
        emission_lambda=float(optics.emission_nm),
    )
    plane = nwb.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=channel,
        description=(
            f"Focal plane at {rec.ground_truth.focal_depth_um or 0.0:.1f} um below the "
            f"surface; excitation {excitation_nm} nm is nominal (minisim does not model the "
            "excitation wavelength)"
        ),
        device=device,
        excitation_lambda=float(excitation_nm),
        indicator=indicator,
        location=location,
        imaging_rate=float(acq.fps),
        grid_spacing=[px_um, px_um],
        grid_spacing_unit="micrometers",
        origin_coords=[-(width - 1) / 2 * px_um, -(height - 1) / 2 * px_um],
        origin_coords_unit="micrometers",
        reference_frame="(x, y) = 0 on the optical axis, +x right, +y down",
    )

    dtype = movie_dtype(ds["observed"])
    frames_per_chunk = int(
        max(1, min(n_frames, MOVIE_CHUNK_BYTES // (height * width * dtype.itemsize)))
    )
    movie = _streamed(
        ds["observed"].data,
        axis=0,
        shape=(n_frames, width, height),
        dtype=dtype,
        chunk_shape=(frames_per_chunk, width, height),
        transform=_yx_to_xy,
        bar=bar,
        compress=compress,
    )
    nwb.add_acquisition(
        OnePhotonSeries(
            name="OnePhotonSeries",
            description=(
                "The observed movie (minisim 'observed'), axes (frame, x, y). "
                + (
                    "ADC counts of the simulated sensor."
                    if has_sensor
                    else "Scene intensity (no sensor simulated)."
                )  # fmt: skip
            ),
            data=movie,
            imaging_plane=plane,
            unit="ADC counts" if has_sensor else "a.u.",
            rate=float(acq.fps),
            starting_time=0.0,
            exposure_time=1.0 / float(acq.fps),
            dimension=[width, height],
        )
    )

    ophys = nwb.create_processing_module(
        name="ophys",
        description=(
            "Ground truth of the simulation (minisim): footprints, traces, motion and the "
            "scope's static fields that produced the movie"
        ),
    )
    _add_segmentation(
        exported_cells(ds, include_margin),
        ophys,
        plane,
        float(acq.fps),
        ImageSegmentation,
        Fluorescence,
        RoiResponseSeries,
    )
    if "shift_y" in ds.coords and "shift_x" in ds.coords:
        shifts = np.asarray(rec.ground_truth.shifts.values)  # (frame, [y, x])
        ophys.add(
            TimeSeries(
                name="motion_shifts",
                description=(
                    "Applied brain motion (dy, dx) in pixels, columns (y, x); positive moves "
                    "the content down/right. A motion-correction estimate is its negation."
                ),
                data=shifts,
                unit="pixels",
                rate=float(acq.fps),
                starting_time=0.0,
            )
        )
    for name in ds.coords:
        if ds[name].dims == ("frame",) and name not in ("frame", "time_s", "shift_y", "shift_x"):
            ophys.add(
                TimeSeries(
                    name=name,
                    description=f"minisim ground truth {name!r} (docs/reference/dataset.md)",
                    data=np.asarray(ds[name].values),
                    unit="n.a.",
                    rate=float(acq.fps),
                    starting_time=0.0,
                )
            )
    if "neuropil_temporal" in ds:
        ophys.add(
            TimeSeries(
                name="neuropil_temporal",
                description="Envelope of each neuropil component, columns = components",
                data=np.asarray(ds["neuropil_temporal"].values).T,
                unit="n.a.",
                rate=float(acq.fps),
                starting_time=0.0,
            )
        )
    images = []
    for name in STATIC_FIELDS:
        if name in ds.coords or name in ds:
            images.append(_image(GrayscaleImage, name, ds[name].values, px_um,
                                 f"minisim static field {name!r}, axes (x, y)"))  # fmt: skip
    if "neuropil_spatial" in ds:
        for k, component in enumerate(np.asarray(ds["neuropil_spatial"].values)):
            images.append(_image(GrayscaleImage, f"neuropil_spatial_{k}", component, px_um,
                                 f"neuropil spatial component {k}, axes (x, y)"))  # fmt: skip
    if images:
        ophys.add(Images(name="static_fields", images=images,
                         description="The scope's static fields and neuropil components"))  # fmt: skip
    return nwb


def _image(GrayscaleImage, name, values, px_um, description):
    return GrayscaleImage(
        name=name,
        data=np.ascontiguousarray(_yx_to_xy(np.asarray(values, np.float32))),
        resolution=1e4 / px_um,  # pixels per cm
        description=description,
    )


def _add_segmentation(ds, ophys, plane, fps, ImageSegmentation, Fluorescence, RoiResponseSeries):
    n_cells = ds.sizes["cell"]
    height, width = ds.sizes["y"], ds.sizes["x"]
    from hdmf.common import VectorData
    from pynwb.ophys import PlaneSegmentation

    cells_per_chunk = int(max(1, min(n_cells, MOVIE_CHUNK_BYTES // (height * width * 4))))
    columns = []
    for column, source, what in (
        ("image_mask", "A_observed", "footprint as observed through the optics (A_observed)"),
        ("planted_image_mask", "A_planted", "footprint as planted (A_planted)"),
    ):
        data = (
            _streamed(ds[source].data, axis=0, shape=(n_cells, width, height), dtype=np.float32,
                      chunk_shape=(cells_per_chunk, width, height), transform=_yx_to_xy)
            if n_cells else np.zeros((0, width, height), np.float32)
        )  # fmt: skip
        columns.append(VectorData(name=column, description=f"{what}, axes (x, y)", data=data))
    for name in ds.coords:
        if name == "cell" or ds[name].dims[:1] != ("cell",):
            continue
        values = np.asarray(ds[name].values)
        if values.dtype.kind not in "biuf":
            continue
        unit = "; columns (z, y, x) in um" if name == "centers_um" else ""
        columns.append(VectorData(
            name=name, data=values,
            description=f"minisim ground truth {name!r} (docs/reference/dataset.md){unit}",
        ))  # fmt: skip
    table = PlaneSegmentation(
        name="PlaneSegmentation",
        description=(
            "One row per cell in the field of view at rest (id = minisim 'cell'): image_mask = A_observed (the "
            "footprint as the optics render it), planted_image_mask = A_planted, and every "
            "per-cell ground-truth value as a column"
        ),
        imaging_plane=plane,
        id=[int(cell) for cell in ds["cell"].values],
        columns=columns,
        colnames=[c.name for c in columns],
    )
    ophys.add(ImageSegmentation(name="ImageSegmentation", plane_segmentations=[table]))
    if not n_cells:
        return
    rois = table.create_roi_table_region(description="every cell of the table",
                                         region=list(range(n_cells)))  # fmt: skip
    fluorescence = None
    for name in ds.data_vars:
        if ds[name].dims != ("cell", "frame"):
            continue
        n_frames = ds.sizes["frame"]
        frames_per_chunk = int(max(1, min(n_frames, MOVIE_CHUNK_BYTES // (4 * n_cells))))
        series = RoiResponseSeries(
            name=name,
            description=_TRACE_DESCRIPTIONS.get(name, f"minisim ground truth {name!r}")
            + ", axes (frame, cell)",
            data=_streamed(ds[name].data, axis=1, shape=(n_frames, n_cells), dtype=np.float32,
                           chunk_shape=(frames_per_chunk, n_cells), transform=np.transpose),
            rois=rois,
            unit=_TRACE_UNITS.get(name, "n.a."),
            rate=fps,
            starting_time=0.0,
        )  # fmt: skip
        if name == "C":
            fluorescence = Fluorescence(name="Fluorescence", roi_response_series=[series])
            ophys.add(fluorescence)
        else:
            ophys.add(series)


_TRACE_DESCRIPTIONS = {
    "C": "Clean calcium trace of each cell (minisim 'C'), frame-averaged, with its resting "
    "level and brightness; one spike's peak = 1",
    "S": "Spike count of each cell in each frame (minisim 'S')",
    "bleaching": "Intact fraction of each cell's fluorophore at the start of each frame",
}
_TRACE_UNITS = {"C": "a.u.", "S": "spikes", "bleaching": "fraction"}


def write_nwb(
    rec,
    path,
    *,
    compress: bool = True,
    excitation_nm: float = DEFAULT_EXCITATION_NM,
    indicator: str = "GCaMP (simulated)",
    location: str = "unknown (simulated tissue)",
    subject=None,
    include_margin: bool = False,
    progress: bool = True,
) -> Path:
    """Stream a recording into an NWB file at ``path`` (a local file: HDF5 needs one).
    ``include_margin=True`` adds the margin cells to the segmentation table."""
    pynwb, _, _, _ = _libraries()
    path = Path(path)
    n_frames = rec.dataset.sizes["frame"]
    if n_frames == 0:
        raise ValueError("the recording has no frames to write")
    bar = progress_bar(n_frames, path.name, progress)
    try:
        with warnings.catch_warnings():
            # The traces reference the table before they join the file: pynwb warns,
            # harmlessly; and the temporary name lacks the .nwb suffix of the final name.
            warnings.filterwarnings("ignore", "The linked table for DynamicTableRegion")
            warnings.filterwarnings("ignore", "The file path provided")
            nwb = build_nwbfile(
                rec, compress=compress, excitation_nm=excitation_nm, indicator=indicator,
                location=location, subject=subject, include_margin=include_margin, bar=bar,
            )  # fmt: skip
            with atomic_file(path, is_ours=is_minisim_nwb, what="NWB file") as partial:
                with pynwb.NWBHDF5IO(str(partial), "w") as io:
                    io.write(nwb)
    finally:
        if bar is not None:
            bar.close()
    return path
