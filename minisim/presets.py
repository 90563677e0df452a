"""Ready-made scopes and brain regions, combined into a spec by :func:`build_spec`.

A :class:`Scope` is the hardware (optics, sensor, its static light fields, exposure);
a :class:`Region` is the biology (neurons, tissue optics, neuropil, vessels). Any scope
images any region::

    spec = build_spec(miniscope_v4(), ca1(), duration_s=30.0, seed=0)

Presets return new frozen models; vary them with ``model_copy(update=...)`` or sweep the
built spec with :func:`minisim.sweep`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .acquisition import (
    Acquisition,
    FrozenModel,
    ImageSensor,
    NonNegativeFloat,
    Optics,
    PositiveFloat,
    Tissue,
)
from .spec import Output, Spec
from .steps import (
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
)

__all__ = [
    "Region",
    "Scope",
    "build_spec",
    "ca1",
    "cortex_l23",
    "generic_1p",
    "miniscope_v4",
]


class Scope(FrozenModel):
    """A microscope: optics, detector, its static light fields and exposure.

    Parameters
    ----------
    optics : Optics
    image_sensor : ImageSensor
    illumination, vignette, leakage : step or None
        The scope's excitation falloff, collection falloff and stray-light glow.
    photons_per_unit : float
        Exposure: photons per pixel per unit scene intensity per frame (the ``Sensor``).
    focal_depth_in_tissue_um : float or "auto"
        Where the scope focuses (``"auto"``: the depth that makes most cells detectable).
    front_working_distance_um : float or None
        Informational only.
    """

    optics: Optics
    image_sensor: ImageSensor
    illumination: IlluminationProfile | None = None
    vignette: Vignette | None = None
    leakage: Leakage | None = None
    photons_per_unit: PositiveFloat = 100.0
    focal_depth_in_tissue_um: NonNegativeFloat | Literal["auto"] = "auto"
    front_working_distance_um: PositiveFloat | None = None

    @property
    def pixel_size_um(self) -> float:
        """Size of one sensor pixel in the tissue (pitch / magnification), µm."""
        return self.image_sensor.pixel_pitch_um / self.optics.magnification

    @property
    def fov_um(self) -> tuple[float, float]:
        """Field of view (height, width) in µm."""
        px = self.pixel_size_um
        return (self.image_sensor.n_px_height * px, self.image_sensor.n_px_width * px)


class Region(FrozenModel):
    """A brain region: its neurons and tissue, with optional neuropil and vessels."""

    population: NeuronPopulation
    tissue: Tissue
    neuropil: Neuropil | None = None
    vasculature: Vasculature | None = None


def miniscope_v4() -> Scope:
    """UCLA Miniscope V4: NA 0.3, 2.9×, 608² px of 4.8 µm (≈ 1.655 µm/px, ≈ 1006 µm field).

    A curved focal surface (R = 2500 µm), an 8-bit sensor, centre-bright illumination
    (0.7 at the corners), vignetting (0.6) and a Gaussian stray-light glow (0.08).
    """
    return Scope(
        optics=Optics(
            na=0.3, magnification=2.9, emission_nm=525.0, field_curvature_radius_um=2500.0
        ),
        image_sensor=ImageSensor(n_px_height=608, n_px_width=608, pixel_pitch_um=4.8, bit_depth=8),
        illumination=IlluminationProfile(falloff=0.7),
        vignette=Vignette(falloff=0.6),
        leakage=Leakage(profile="gaussian", level=0.08),
        photons_per_unit=600.0,
        focal_depth_in_tissue_um="auto",
        front_working_distance_um=700.0,
    )


def generic_1p() -> Scope:
    """A generic one-photon scope: default optics and sensor (96 µm field), no fields."""
    return Scope(optics=Optics(), image_sensor=ImageSensor())


def ca1() -> Region:
    """Hippocampal CA1 pyramidal layer: dense (45 000/mm³), thin band at 140–160 µm."""
    return Region(
        population=NeuronPopulation(
            density_per_mm3=45000.0,
            soma_radius_um=5.0,
            morphology="cytosolic",
            depth_range_um=(140.0, 160.0),
        ),
        tissue=Tissue(),
        neuropil=Neuropil(amplitude=0.4),
        vasculature=Vasculature(
            enabled=True,
            layers=(VesselLayer(depth_um=120.0, n_roots=3, root_radius_um=14.0, opacity=0.65),),
        ),
    )


def cortex_l23() -> Region:
    """Cortex layer 2/3: sparser (8 000/mm³), larger somata over 100–200 µm, big surface vessels."""
    return Region(
        population=NeuronPopulation(
            density_per_mm3=8000.0,
            soma_radius_um=6.0,
            morphology="cytosolic",
            depth_range_um=(100.0, 200.0),
        ),
        tissue=Tissue(),
        neuropil=Neuropil(amplitude=0.6),
        vasculature=Vasculature(
            enabled=True,
            layers=(
                VesselLayer(
                    depth_um=80.0,
                    n_roots=2,
                    root_radius_um=25.0,
                    opacity=0.9,
                    branch_prob=0.15,
                    tortuosity_deg=5.0,
                ),
            ),
        ),
    )


def build_spec(
    scope: Scope,
    region: Region,
    *,
    duration_s: float = 150.0,
    fps: float = 20.0,
    seed: int = 0,
    populations: Sequence[NeuronPopulation] | None = None,
    activity: CellActivity | None = None,
    sensor: Sensor | None = None,
    extra_steps: Sequence = (),
    include_neuropil: bool = True,
    include_vasculature: bool = True,
    include_scope_fields: bool = True,
    save_intermediates: bool = False,
) -> Spec:
    """A spec of ``scope`` imaging ``region``.

    Parameters
    ----------
    scope, region : Scope, Region
    duration_s, fps, seed : float, float, int
    populations : list of NeuronPopulation, optional
        Replace the region's population (e.g. explicit ``positions_um``, or several
        populations). Without it the region's population is set on the
        ``PlaceNeurons`` step's own fields (same cells), so a sweep can vary it as
        ``"steps.place_neurons.density_per_mm3"``.
    activity, sensor : step, optional
        Replace ``CellActivity()`` and ``Sensor(photons_per_unit=scope.photons_per_unit)``.
    extra_steps : sequence of steps
        More steps (e.g. ``BrainMotion``, ``Bleaching``); placed in canonical order. A
        kind the preset already has raises — replace it through its own argument.
    include_neuropil, include_vasculature, include_scope_fields : bool
        Toggle the region's neuropil and vessels and the scope's illumination, vignette
        and leakage.
    save_intermediates : bool

    Returns
    -------
    Spec
        For a Miniscope V4 on CA1: place_neurons, cell_activity, optics, composite,
        neuropil, vasculature, illumination_profile, vignette, leakage, sensor.
    """
    acquisition = Acquisition(
        optics=scope.optics,
        image_sensor=scope.image_sensor,
        tissue=region.tissue,
        fps=fps,
        duration_s=duration_s,
        focal_depth_in_tissue_um=scope.focal_depth_in_tissue_um,
        front_working_distance_um=scope.front_working_distance_um,
    )
    if populations is None:
        # The region's single population goes on the step's own fields, so a sweep can
        # address it as ``steps.place_neurons.<field>``.
        place = PlaceNeurons(**dict(region.population))
    else:
        place = PlaceNeurons(populations=list(populations))
    steps = [
        place,
        activity if activity is not None else CellActivity(),
        CellOptics(),
        Composite(),
    ]
    if include_neuropil and region.neuropil is not None:
        steps.append(region.neuropil)
    if include_vasculature and region.vasculature is not None:
        steps.append(region.vasculature)
    if include_scope_fields:
        fields = (scope.illumination, scope.vignette, scope.leakage)
        steps.extend(f for f in fields if f is not None)
    steps.append(sensor if sensor is not None else Sensor(photons_per_unit=scope.photons_per_unit))
    preset_kinds = {step.kind for step in steps}
    for step in extra_steps:
        if step.kind in preset_kinds:
            raise ValueError(
                f"extra_steps has a {step.kind} step but the preset already includes one: "
                f"pass it through build_spec's own argument (activity=, sensor=, populations=) "
                f"or switch the preset's off (include_*=False)"
            )
        preset_kinds.add(step.kind)
    steps.extend(extra_steps)
    return Spec(
        acquisition=acquisition,
        seed=seed,
        steps=steps,
        output=Output(save_intermediates=save_intermediates),
    )
