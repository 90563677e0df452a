"""One module per physical effect: its spec model, numpy kernels and graph builder.

A new effect is one new module here plus one line in :data:`STEPS` (and the spec union).
"""

from .base import StepSpec
from .bleaching import Bleaching
from .brain_motion import BrainMotion
from .catalog import CATALOG, INFO, RANK, STAGE_ALIASES, StepInfo, canonical_order
from .cell_activity import CellActivity, calcium_kernel, kernel_timing
from .composite import Composite
from .detection import DETECT_SNR_THRESHOLD, detection_snr
from .fields import IlluminationProfile, Leakage, Vignette, radial_falloff
from .neuropil import Neuropil
from .optics import CellOptics
from .place_neurons import NeuronPopulation, PlaceNeurons, neuron_footprint
from .sensor import Sensor
from .vasculature import Vasculature, VesselLayer

#: Every step model that can be simulated, in canonical order.
STEPS = (
    PlaceNeurons,
    CellActivity,
    Bleaching,
    CellOptics,
    Composite,
    Neuropil,
    Vasculature,
    BrainMotion,
    IlluminationProfile,
    Vignette,
    Leakage,
    Sensor,
)
#: The step models by kind.
STEP_FOR_KIND = {cls.model_fields["kind"].default: cls for cls in STEPS}

__all__ = [
    "CATALOG",
    "DETECT_SNR_THRESHOLD",
    "INFO",
    "IlluminationProfile",
    "Leakage",
    "Neuropil",
    "Vasculature",
    "VesselLayer",
    "Vignette",
    "radial_falloff",
    "RANK",
    "STAGE_ALIASES",
    "STEPS",
    "STEP_FOR_KIND",
    "Bleaching",
    "BrainMotion",
    "CellActivity",
    "CellOptics",
    "Composite",
    "NeuronPopulation",
    "PlaceNeurons",
    "Sensor",
    "StepInfo",
    "StepSpec",
    "calcium_kernel",
    "canonical_order",
    "detection_snr",
    "kernel_timing",
    "neuron_footprint",
]
