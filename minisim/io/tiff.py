"""TIFF export: one (frame, y, x) stack for ImageJ/Fiji, suite2p and CaImAn (``tiff`` extra).

The stack is written frame by frame with tifffile, so memory stays bounded whatever the
recording's length. It carries ImageJ metadata (axes ``TYX``, the frame interval, the
pixel size in µm as the resolution with its unit) and minisim's provenance in the
Software tag plus the spec JSON in the ImageJ ``Info`` field. Sensor counts keep their
8- or 16-bit type; a movie without a sensor is written as float32.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .common import SIGNATURE, movie_dtype, require, written_by
from .outputs import atomic_file
from .stream import iter_blocks, progress_bar

#: Above this many bytes of pixels a classic TIFF cannot hold the stack.
CLASSIC_TIFF_LIMIT = 2**32 - 2**25


def is_minisim_tiff(path: Path) -> bool:
    """A TIFF whose Software tag says minisim wrote it."""
    tifffile = require("tifffile", "tiff", "TIFF export")
    try:
        with tifffile.TiffFile(path) as tif:
            software = tif.pages.first.software
    except Exception:  # not a TIFF at all, or unreadable: not ours
        return False
    return str(software).startswith(SIGNATURE)


def write_tiff(rec, path, *, bigtiff: bool | None = None, progress: bool = True) -> Path:
    """Stream ``rec.observed`` into an ImageJ-compatible TIFF stack at ``path``.

    ``bigtiff=None`` writes BigTIFF only when the pixels exceed what a classic TIFF can
    address (~4 GiB); ``True``/``False`` force it. Returns the path.
    """
    tifffile = require("tifffile", "tiff", "TIFF export")
    path = Path(path)
    movie = rec.observed
    n, height, width = movie.shape
    if n == 0:
        raise ValueError("the recording has no frames to write")
    dtype = movie_dtype(movie)
    if bigtiff is None:
        bigtiff = n * height * width * dtype.itemsize > CLASSIC_TIFF_LIMIT
    acq = rec.spec.acquisition
    pixels_per_um = 1.0 / acq.pixel_size_um
    metadata = {
        "axes": "TYX",
        "unit": "um",
        "finterval": 1.0 / acq.fps,
        "fps": acq.fps,
        "Info": rec.dataset.attrs["spec"],
    }
    bar = progress_bar(n, path.name, progress)

    def frames():
        for _start, block in iter_blocks(movie.data):
            yield from block.astype(dtype, copy=False)
            if bar is not None:
                bar.update(len(block))

    try:
        with warnings.catch_warnings():
            # A BigTIFF with ImageJ metadata is "nonconformant": ImageJ 1.x cannot open
            # BigTIFF at all, but Fiji (Bio-Formats), tifffile, suite2p and CaImAn read it and
            # its calibration; classic TIFF is used whenever the stack fits (bigtiff=None).
            warnings.filterwarnings("ignore", ".*nonconformant BigTIFF ImageJ", UserWarning)
            with atomic_file(path, is_ours=is_minisim_tiff, what="TIFF") as partial:
                with tifffile.TiffWriter(partial, bigtiff=bigtiff, imagej=True) as tif:
                    tif.write(
                        frames(),
                        shape=(n, height, width),
                        dtype=dtype,
                        photometric="minisblack",
                        resolution=(pixels_per_um, pixels_per_um),
                        resolutionunit="NONE",
                        software=written_by(),
                        metadata=metadata,
                        contiguous=True,
                    )
    finally:
        if bar is not None:
            bar.close()
    return path
