"""Interactive exploration: public helpers behind the notebooks and the studio.

* :class:`FramePreview` — any frame of any recording at once (only its chunk is computed);
* one effect at a time: :func:`activity_preset`, :func:`taus_from_timing`,
  :func:`kernel_curve`, :func:`blur_vs_depth`, :func:`motion_trajectory`,
  :func:`vessel_mask`, :func:`bleaching_curves`, :func:`digitize_frame`,
  :func:`field_profiles`, :func:`snr_vs_radius`;
* :func:`spec_to_python` and :func:`estimate_size`;
* the studio (:mod:`minisim.explore.studio`, needs the ``explore`` extra) and the bundled
  notebooks (:func:`notebook_paths`).
"""

from .codegen import estimate_size, format_bytes, spec_to_python
from .notebooks import copy_notebooks, notebook_paths
from .physics import (
    ACTIVITY_LEVELS,
    DETECT_SNR_THRESHOLD,
    activity_at_level,
    activity_preset,
    bleaching_curves,
    blur_vs_depth,
    digitize_frame,
    field_profiles,
    kernel_curve,
    kernel_timing,
    motion_trajectory,
    snr_vs_radius,
    taus_from_timing,
    vessel_mask,
)
from .preview import FramePreview, ResultCache, window_spec

__all__ = [
    "ACTIVITY_LEVELS",
    "DETECT_SNR_THRESHOLD",
    "FramePreview",
    "ResultCache",
    "activity_at_level",
    "activity_preset",
    "bleaching_curves",
    "blur_vs_depth",
    "copy_notebooks",
    "digitize_frame",
    "estimate_size",
    "field_profiles",
    "format_bytes",
    "kernel_curve",
    "kernel_timing",
    "motion_trajectory",
    "notebook_paths",
    "snr_vs_radius",
    "spec_to_python",
    "taus_from_timing",
    "vessel_mask",
    "window_spec",
]
