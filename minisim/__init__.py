"""minisim: lazy, chunked one-photon miniscope simulation with exact ground truth."""

from importlib.metadata import PackageNotFoundError, version

from .acquisition import Acquisition, ImageSensor, Optics, Tissue
from .cache import cache_dir, cache_path, simulate_cached
from .errors import RecordingFormatWarning, SpecWarning
from .metrics import (
    ActivityScore,
    Match,
    activity_similarity,
    field_pearson,
    footprint_mask,
    footprint_roi_trace,
    global_shift_from_trajectories,
    hungarian_match,
    shift_rmse,
    trace_pearson,
)
from .persist import IncompleteStoreError, open_recording
from .presets import Region, Scope, build_spec
from .recording import GroundTruth, Recording
from .simulate import simulate, simulate_video
from .spec import AnyStep, Output, Spec
from .steps import (
    DETECT_SNR_THRESHOLD,
    Bleaching,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    Leakage,
    NeuronPopulation,
    Neuropil,
    PlaceNeurons,
    Sensor,
    Vasculature,
    VesselLayer,
    Vignette,
    detection_snr,
)
from .sweep import SweptSpec, generate, sweep
from .testing import benchmark

try:
    __version__ = version("minisim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "Acquisition",
    "ActivityScore",
    "AnyStep",
    "Bleaching",
    "BrainMotion",
    "CellActivity",
    "CellOptics",
    "DETECT_SNR_THRESHOLD",
    "Composite",
    "GroundTruth",
    "IncompleteStoreError",
    "IlluminationProfile",
    "Leakage",
    "Match",
    "Neuropil",
    "Vasculature",
    "VesselLayer",
    "Vignette",
    "ImageSensor",
    "NeuronPopulation",
    "Optics",
    "Output",
    "PlaceNeurons",
    "Recording",
    "RecordingFormatWarning",
    "Region",
    "Scope",
    "Spec",
    "SweptSpec",
    "Sensor",
    "SpecWarning",
    "Tissue",
    "__version__",
    "activity_similarity",
    "benchmark",
    "build_spec",
    "detection_snr",
    "cache_dir",
    "cache_path",
    "field_pearson",
    "footprint_mask",
    "footprint_roi_trace",
    "generate",
    "global_shift_from_trajectories",
    "hungarian_match",
    "open_recording",
    "shift_rmse",
    "simulate",
    "simulate_cached",
    "simulate_video",
    "sweep",
    "trace_pearson",
]
