"""minisim: lazy, chunked one-photon miniscope simulation with exact ground truth."""

from .acquisition import Acquisition, ImageSensor, Optics, Tissue, sample_field_at
from .cache import cache_dir, cache_path, simulate_cached
from .errors import RecordingFormatWarning, SpecWarning
from .io.integrity import DamagedStoreError
from .io.outputs import OutputPathError
from .io.zarr_store import IncompleteStoreError, open_recording, verify
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
    DroppedFrames,
    IlluminationProfile,
    Leakage,
    NeuronPopulation,
    Neuropil,
    PlaceNeurons,
    Sensor,
    Vasculature,
    VesselDilation,
    VesselLayer,
    Vignette,
    detection_snr,
)
from .sweep import SweptSpec, generate, sweep
from .testing import benchmark
from .version import __version__

__all__ = [
    "sample_field_at",
    "Acquisition",
    "ActivityScore",
    "AnyStep",
    "Bleaching",
    "BrainMotion",
    "CellActivity",
    "CellOptics",
    "DETECT_SNR_THRESHOLD",
    "Composite",
    "DroppedFrames",
    "GroundTruth",
    "IncompleteStoreError",
    "DamagedStoreError",
    "OutputPathError",
    "IlluminationProfile",
    "Leakage",
    "Match",
    "Neuropil",
    "Vasculature",
    "VesselDilation",
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
    "verify",
    "shift_rmse",
    "simulate",
    "simulate_cached",
    "simulate_video",
    "sweep",
    "trace_pearson",
]
