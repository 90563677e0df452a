"""Neuropil: the diffuse glow of the dendritic and axonal felt around the cells.

A few smooth spatial components live on the tissue canvas (so the haze moves with the
brain). Each is modulated by an envelope mixing the local population's calcium (lagged
and low-passed) with an independent slow log-normal drift:

``T_k(t) = (1 − c)·exp(0.4·OU_k(t) − 0.08) + c·P(t)``, and the movie gains
``amplitude·(1/n)·Σ_k T_k(t)·S_k(y, x)``.

The drifts and the population low-pass are carried-state recurrences (scans), so they
do not depend on chunking.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.signal import lfilter

from ..acquisition import PositiveFloat, warn_odd
from ..engine import ScanOutput, Scene, constant, map_ranges, recipe, scan, stream
from ..engine import portable_math as pm
from .base import StepSpec

KIND = "neuropil"
#: More spatial components than this add nothing a smooth field can show, and each is a
#: canvas-sized array held while building.
MAX_COMPONENTS = 1000
#: Intensities in units of a cell's baseline (see cell_activity.MAX_INTENSITY).
MAX_AMPLITUDE = 10_000.0
#: Log-σ of the log-normal drift (its mean is kept at 1).
DRIFT_LOG_SIGMA = 0.4


class Neuropil(StepSpec):
    """Additive diffuse background driven by population activity and slow drift.

    Parameters
    ----------
    spatial_sigma_um : float
        Smoothness (Gaussian σ) of the spatial components.
    temporal_tau_s : float
        Correlation time of each component's independent drift.
    population_tau_s : float
        Lag and low-pass time constant of the population driver.
    amplitude : float
        Strength, in scene intensity units (a cell's baseline f0 is 1).
    n_components : int
        Number of spatial components.
    population_coupling : float
        Share of the envelope that follows the population (0: pure drift, 1: pure
        population).
    """

    kind: Literal["neuropil"] = KIND
    order: ClassVar[float] = 60
    reads: ClassVar[tuple[str, ...]] = ("population_calcium", "bleaching_mean")
    provides: ClassVar[tuple[str, ...]] = (
        "neuropil_spatial",
        "neuropil_temporal",
        "observed",
    )
    may_provide: ClassVar[tuple[str, ...]] = ("neuropil_population",)
    spatial_sigma_um: PositiveFloat = 40.0
    temporal_tau_s: PositiveFloat = 10.0
    population_tau_s: PositiveFloat = 1.5
    amplitude: PositiveFloat = 0.5
    n_components: Annotated[int, Field(ge=1)] = 3
    population_coupling: Annotated[float, Field(ge=0, le=1)] = 0.7

    @model_validator(mode="after")
    def _physical(self):
        if self.n_components > MAX_COMPONENTS:
            raise ValueError(
                f"neuropil.n_components={self.n_components} exceeds {MAX_COMPONENTS}: each is a "
                "smooth canvas-sized field held in memory, and a few already span the "
                "smooth background: use 1–10"
            )
        if self.amplitude > MAX_AMPLITUDE:
            raise ValueError(
                f"neuropil.amplitude={self.amplitude:g} exceeds {MAX_AMPLITUDE:g} (units of a "
                "cell's baseline f0 = 1), so the haze would bury every cell: use 0.1–2"
            )
        if self.amplitude > 100:
            warn_odd(
                f"neuropil.amplitude={self.amplitude:g} is 100× a cell's baseline: the haze "
                "dominates the movie (typical 0.1–2)"
            )
        return self

    def check_in_spec(self, spec) -> None:
        from ..limits import margin_px

        acq = spec.acquisition
        widest_um = (max(acq.fov_shape) + 2 * margin_px(spec)) * acq.pixel_size_um
        if self.spatial_sigma_um > 4 * widest_um:
            raise ValueError(
                f"neuropil.spatial_sigma_um={self.spatial_sigma_um:g} is more than 4× the "
                f"simulated tissue ({widest_um:g} µm across): the components would be flat and "
                f"the blur would take minutes; use a σ below {widest_um:g} µm (typical 20–100)"
            )

    def envelopes(self, scene: Scene):
        """The (frame, component) envelopes and the population driver (or None).

        The drifts are a recurrence (a scan); the driver's mean-1 scaling and the
        envelopes that use it need every frame, so both are whole-recording statistics.
        """
        acq = scene.context.acquisition
        params = EnvelopeParams(
            seed=scene.seed,
            n_components=self.n_components,
            drift_decay=acq.decay_per_frame(self.temporal_tau_s),
            population_decay=acq.decay_per_frame(self.population_tau_s),
        )
        summed = scene.signals.get("population_calcium")
        drift, population = scan(
            scene.layer_name("neuropil", "drivers"),
            envelope_scan_step,
            init=(drift_initial_state, constant(params, "neuropil-params")),
            n_frames=scene.n_frames,
            outputs=[
                ScanOutput("drift", (self.n_components, None), np.float64),
                ScanOutput("population", (None,), np.float64),
            ],
            sequences=[] if summed is None else [(summed, 0)],
            constants=[constant(params, "neuropil-params")],
        )
        inputs, names = [(drift, 1)], ["drift"]
        driver = None
        if summed is not None:
            driver = scene.statistic(
                ("neuropil", "population"),
                normalized_population,
                (),
                np.float64,
                inputs=[(population, 0)],
            )
            inputs.append((driver, 0))
            names.append("population")
        if "bleaching_mean" in scene.signals:  # the felt bleaches like the cells around it
            inputs.append((scene.signals["bleaching_mean"], 0))
            names.append("bleaching")
        envelopes = scene.statistic(
            ("neuropil", "envelopes"),
            envelope_frames,
            (self.n_components,),
            np.float32,
            inputs=inputs,
            constants=[tuple(names), float(self.population_coupling)],
        )
        return envelopes, driver

    def build(self, scene: Scene) -> Scene:
        acq = scene.context.acquisition
        sigma_px = self.spatial_sigma_um / acq.pixel_size_um
        envelopes, driver = self.envelopes(scene)
        canvas_movie = scene.canvas_movie(scene.context.store_dtype)
        movie = scene.pixel_map(
            ("neuropil",),
            add_neuropil_frames,
            scene.canvas_shape,
            canvas_movie.dtype,
            inputs=[(canvas_movie, 0), (envelopes, 0)],
            constants=[
                recipe(  # rebuilt on the workers: megabytes in, four numbers shipped
                    "neuropil-spatial",
                    spatial_components_f32,
                    scene.canvas_shape,
                    sigma_px,
                    self.n_components,
                    scene.seed,
                ),
                float(self.amplitude),
            ],
        )
        # The truth's fields are lazy too: blurring them (a quarter second at 512 px, which
        # releases the GIL) then runs beside the other first tasks instead of in simulate().
        spatial = map_ranges(
            scene.layer_name("neuropil", "spatial"),
            fov_spatial_components,
            (self.n_components,),
            scene.fov_shape,
            np.float64,
            constants=[scene.canvas_shape, sigma_px, self.n_components, scene.seed,
                       scene.fov_window],
        )  # fmt: skip
        truth = {
            "neuropil_spatial": (("component", "y", "x"), spatial),
            "neuropil_temporal": (("component", "frame"), envelopes.T),
        }
        coords = {} if driver is None else {"neuropil_population": ("frame", driver)}
        return scene.evolve(movie=movie, truth=truth, coords=coords)


# --------------------------------------------------------------------------- kernels


def spatial_components_f32(shape, sigma_px: float, n: int, seed: int) -> np.ndarray:
    """:func:`spatial_components` in the movie's float32, as the pixel kernel reads them."""
    return _spatial_components(tuple(shape), sigma_px, n, seed).astype(np.float32)


def fov_spatial_components(start, stop, shape, sigma_px: float, n: int, seed: int, window):
    """Components [start, stop) of :func:`spatial_components`, cropped to the field of view."""
    top, left, height, width = window
    fields = _spatial_components(tuple(shape), sigma_px, n, seed)
    return fields[start:stop, top : top + height, left : left + width].copy()


def spatial_components(shape, sigma_px: float, n: int, seed: int) -> np.ndarray:
    """n smooth fields in [0, 1] on the canvas, rescaled to share one spatial mean.

    Each is white noise blurred by a Gaussian (edges extended), shifted to a minimum of 0
    and divided by its maximum; a flat field becomes all ones.
    """
    return _spatial_components(tuple(shape), sigma_px, n, seed).copy()


@functools.lru_cache(maxsize=2, typed=True)
def _spatial_components(shape, sigma_px: float, n: int, seed: int) -> np.ndarray:
    """The fields, computed once per process: the ground truth's lazy crop and the pixel
    kernel's recipe both read them (a quarter second of blurring at 512 px)."""
    fields = []
    for k in range(n):
        noise = stream(seed, KIND, "spatial", k).standard_normal(shape)
        field = pm.gaussian_filter(noise, sigma_px, mode="nearest")
        field -= field.min()
        peak = field.max()
        fields.append(field / peak if peak > 1e-12 else np.ones(shape))
    fields = np.asarray(fields)
    if n > 1:
        means = fields.mean(axis=(1, 2))
        fields *= (means.mean() / np.maximum(means, 1e-12))[:, None, None]
    fields.flags.writeable = False  # shared by every caller: copied before it leaves
    return fields


@dataclass(frozen=True)
class EnvelopeParams:
    seed: int
    n_components: int
    drift_decay: float  # per frame
    population_decay: float  # per frame


def drift_initial_state(params: EnvelopeParams):
    """Drifts start stationary (unit normal); the population filter starts at its input."""
    return {
        "drift": stream(params.seed, KIND, "drift_init").standard_normal(params.n_components),
        "population": None,
    }


def envelope_scan_step(state, block: int, start: int, stop: int, *args):
    """Unit-variance AR(1) drifts per component, and the one-pole low-passed population sum.

    ``args`` is ``(summed, params)`` with the population's summed calcium per frame, or
    ``(params,)`` without activity.
    """
    *summed, params = args
    a = params.drift_decay
    noise = stream(params.seed, KIND, "drift", block).standard_normal(
        (stop - start, params.n_components)
    )
    drift = lfilter(
        [math.sqrt(1 - a * a)], [1.0, -a], noise, axis=0, zi=(a * state["drift"])[None, :]
    )[0]
    if summed:
        b = params.population_decay
        previous = summed[0][0] if state["population"] is None else state["population"]
        population = lfilter([1 - b], [1.0, -b], summed[0], zi=[b * previous])[0]
        last = float(population[-1])
    else:
        population, last = np.zeros(stop - start), None
    return {"drift": drift[-1].copy(), "population": last}, drift.T, population


def normalized_population(start, stop, population) -> np.ndarray:
    """The whole population driver scaled to mean 1 (NaN when there is no signal at all)."""
    mean = population.mean()
    return population / mean if mean > 1e-12 else np.full_like(population, np.nan)


def envelope_frames(start, stop, *args) -> np.ndarray:
    """(frame, component) envelopes ``(1 − c)·lognormal(drift) + c·P``, faded by bleaching.

    ``args`` holds the inputs named in ``names`` (drift, then optionally the mean-1
    population driver and bleaching), then ``names`` and the coupling c. Without a
    population signal (a NaN driver) the envelope is the drift alone.
    """
    *inputs, names, coupling = args
    given = dict(zip(names, inputs, strict=True))
    envelope = pm.exp(DRIFT_LOG_SIGMA * given["drift"] - DRIFT_LOG_SIGMA * DRIFT_LOG_SIGMA / 2).T
    driver = given.get("population")
    if driver is not None and not np.isnan(driver).all():
        envelope = (1 - coupling) * envelope + coupling * driver[:, None]
    if "bleaching" in given:  # the cells' mean fade per frame
        envelope = envelope * given["bleaching"][:, None]
    return envelope.astype(np.float32)


def add_neuropil_frames(start, stop, frames, envelopes, spatial, amplitude) -> np.ndarray:
    """frames + amplitude·(1/n)·Σ_k envelopes[t, k]·spatial[k], components in order."""
    scale = np.float32(amplitude / len(spatial))
    weights = [scale * envelopes[:, k] for k in range(len(spatial))]
    out = np.empty_like(frames)
    # Frame by frame, so the frame, the components and one product stay in cache (whole-chunk
    # products streamed ~50 MB temporaries through memory per component); same operations.
    product = np.empty(spatial.shape[1:], np.result_type(spatial, *weights))
    for t in range(len(out)):
        out[t] = frames[t]
        for k in range(len(spatial)):
            np.multiply(weights[k][t], spatial[k], out=product)
            out[t] += product
    return out
