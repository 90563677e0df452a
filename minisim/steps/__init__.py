"""One module per physical effect: its spec model, numpy kernels and graph builder.

A new effect is one new module here (its class declares everything the engine and the
spec need: see :mod:`minisim.steps.base`), or a class in another package registered
through the ``minisim.steps`` entry point group.
"""

from .base import StepSpec
from .bleaching import Bleaching
from .brain_motion import BrainMotion
from .cell_activity import CellActivity, calcium_kernel, kernel_timing
from .composite import Composite
from .detection import DETECT_SNR_THRESHOLD, detection_snr
from .dropped_frames import DroppedFrames
from .fields import IlluminationProfile, Leakage, Vignette, radial_falloff
from .neuropil import Neuropil
from .optics import CellOptics
from .place_neurons import NeuronPopulation, PlaceNeurons, neuron_footprint
from .registry import registered_steps, stage_aliases, step_class
from .sensor import Sensor
from .vasculature import Vasculature, VesselLayer
from .vessel_dilation import VesselDilation

__all__ = [
    "DETECT_SNR_THRESHOLD",
    "IlluminationProfile",
    "Leakage",
    "Neuropil",
    "Vasculature",
    "VesselDilation",
    "VesselLayer",
    "Vignette",
    "radial_falloff",
    "Bleaching",
    "BrainMotion",
    "CellActivity",
    "CellOptics",
    "Composite",
    "DroppedFrames",
    "NeuronPopulation",
    "PlaceNeurons",
    "Sensor",
    "StepSpec",
    "registered_steps",
    "stage_aliases",
    "step_class",
    "calcium_kernel",
    "detection_snr",
    "kernel_timing",
    "neuron_footprint",
]
