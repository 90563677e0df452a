"""What every exporter shares: the optional-library import message and provenance text."""

from __future__ import annotations

import importlib

#: The tag every exporter writes into its file so that minisim recognises its own output.
SIGNATURE = "minisim"


def require(module: str, extra: str, what: str):
    """Import an optional library, or fail with one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f'{what} needs the {module} package: pip install "minisim[{extra}]" '
            f'(from a source checkout: pip install ".[{extra}]")'
        ) from err


def package_version() -> str:
    from .. import __version__

    return __version__


def written_by() -> str:
    """Provenance text starting with :data:`SIGNATURE` (``"minisim 0.1.0"``)."""
    return f"{SIGNATURE} {package_version()}"


def exported_cells(ds, include_margin: bool = False):
    """The cells an exporter writes as its units: those in the field of view at rest.

    These are the ground truth's units (``rec.ground_truth``), the cells a
    motion-corrected pipeline can report, so a pipeline's ROIs compare one to one with the
    exported table. The margin cells simulated around the field only to move light into
    it are left out unless ``include_margin`` (then every cell, flagged by ``in_fov``).
    The ``cell`` coordinate keeps each unit's index in the recording.
    """
    import numpy as np

    if include_margin or "in_fov" not in ds.coords:
        return ds
    in_fov = np.asarray(ds["in_fov"].values, bool)
    return ds if in_fov.all() else ds.isel(cell=np.flatnonzero(in_fov))


def movie_dtype(observed):
    """The dtype a movie is exported with: the sensor's integer counts as they are,
    float32 for a continuous-intensity movie."""
    import numpy as np

    dtype = np.dtype(observed.dtype)
    return dtype if dtype.kind in "ui" else np.dtype(np.float32)
