"""One module per physical effect: its spec model, numpy kernels and graph builder."""

from .base import StepSpec
from .catalog import CATALOG, INFO, RANK, STAGE_ALIASES, StepInfo, canonical_order
from .cell_activity import CellActivity, calcium_kernel, kernel_timing
from .composite import Composite
from .optics import DETECT_SNR_THRESHOLD, CellOptics, detection_snr
from .place_neurons import NeuronPopulation, PlaceNeurons, neuron_footprint

#: The step models that can be simulated, by kind.
STEP_FOR_KIND = {
    cls.model_fields["kind"].default: cls for cls in (PlaceNeurons, CellActivity, Composite)
}

__all__ = [
    "CATALOG",
    "INFO",
    "RANK",
    "STAGE_ALIASES",
    "STEP_FOR_KIND",
    "CellActivity",
    "CellOptics",
    "DETECT_SNR_THRESHOLD",
    "detection_snr",
    "Composite",
    "NeuronPopulation",
    "PlaceNeurons",
    "StepInfo",
    "StepSpec",
    "calcium_kernel",
    "canonical_order",
    "kernel_timing",
    "neuron_footprint",
]
