"""Facts several steps need, resolved once from the whole spec before any step builds.

Steps never look each other up in the spec: a step that needs something another step
decides (the sensor's photon budget, the scope's light fields at each cell) reads it from
the :class:`LightPath`, which the simulation builds from the spec and hands to every step
as ``scene.context``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..acquisition import Acquisition
from .detection import sample_field_at

if TYPE_CHECKING:
    from .sensor import Readout


@dataclass(frozen=True, eq=False)
class LightPath:
    """The acquisition and the cross-step facts of one spec.

    Attributes
    ----------
    acquisition : Acquisition
    photon_field : (y, x) array
        Product of every step's static light fields reaching the sensor (illumination ×
        vignette), 1 where no step shapes the light.
    excitation_field : (y, x) array or None
        The excitation reaching the tissue (relative to the centre), None if uniform.
    photons_per_unit : float or None
        The sensor's exposure (photo-electrons before QE per unit of scene intensity), None
        without a sensor step.
    readout : Readout or None
        How the sensor turns light into counts (exposure, noise, fixed pattern), None
        without a sensor step.
    store_dtype : numpy dtype
        The movie's dtype before the sensor.
    """

    acquisition: Acquisition
    photon_field: np.ndarray
    excitation_field: np.ndarray | None
    photons_per_unit: float | None
    readout: Readout | None
    store_dtype: np.dtype

    @classmethod
    def from_spec(cls, spec) -> LightPath:
        acq = spec.acquisition
        photon = np.ones(acq.fov_shape)
        excitation = None
        for step in spec.steps:  # in canonical order: the product's rounding is fixed
            extra = step.photon_field(acq)
            if extra is not None:
                photon = photon * extra
            field = step.excitation_field(acq)
            if field is not None:
                excitation = field if excitation is None else excitation * field
        sensor = spec.step("sensor")
        return cls(
            acquisition=acq,
            photon_field=photon,
            excitation_field=excitation,
            photons_per_unit=None if sensor is None else sensor.photons_per_unit,
            readout=None if sensor is None else sensor.readout(acq, spec.seed),
            store_dtype=np.dtype(spec.output.store_dtype),
        )

    def photon_field_at(self, centers_um: np.ndarray) -> np.ndarray:
        """The light fields at each cell's rest pixel (rounded, clipped to the field)."""
        return sample_field_at(self.photon_field, self.acquisition, centers_um)

    def excitation_at(self, centers_um: np.ndarray) -> np.ndarray | None:
        """The excitation field at each cell's rest pixel, or None if uniform."""
        if self.excitation_field is None:
            return None
        return sample_field_at(self.excitation_field, self.acquisition, centers_um)
