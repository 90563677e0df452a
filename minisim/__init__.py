"""minisim: lazy, chunked one-photon miniscope simulation with exact ground truth."""

from importlib.metadata import PackageNotFoundError, version

from .acquisition import Acquisition, ImageSensor, Optics, Tissue
from .cache import cache_dir, cache_path, simulate_cached
from .errors import RecordingFormatWarning, SpecWarning
from .persist import IncompleteStoreError, open_recording
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

try:
    __version__ = version("minisim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "Acquisition",
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
    "Spec",
    "SweptSpec",
    "Sensor",
    "SpecWarning",
    "Tissue",
    "__version__",
    "detection_snr",
    "cache_dir",
    "cache_path",
    "generate",
    "open_recording",
    "simulate",
    "simulate_cached",
    "simulate_video",
    "sweep",
]
