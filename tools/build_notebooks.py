"""Write the bundled notebooks (minisim/notebooks/*.ipynb) from the cell sources below.

The .ipynb files are what ships; this script is how they are maintained:

    python tools/build_notebooks.py          # rewrite them (outputs cleared)
    python tools/build_notebooks.py --check  # fail if the shipped files differ

Every notebook runs headless (``MINISIM_NOTEBOOK_SMALL=1`` shrinks the field and the
duration so the test suite executes them in seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parents[1] / "minisim" / "notebooks"

QUIET = """
warnings.simplefilter("ignore", SpecWarning)
# MINISIM_NOTEBOOK_SMALL=1: a small field and a short recording (how the tests run it).
SMALL = os.environ.get("MINISIM_NOTEBOOK_SMALL") == "1"
"""


def _from(module: str, names: str) -> str:
    items = "".join(f"    {n.strip()},\n" for n in names.split(",") if n.strip())
    return f"from {module} import (\n{items})\n"


def setup(minisim_names: str, explore_names: str = "", *, std=(), third=(), testing="") -> str:
    """The first code cell: explicit imports in the linter's order, then SMALL."""
    std_lines = sorted(["import os", "import warnings", *std], key=lambda x: x.split()[1])
    plain = sorted(["import matplotlib.pyplot as plt", "import numpy as np",
                    *(t for t in third if t.startswith("import"))],
                   key=lambda x: x.split()[1].lower())  # fmt: skip
    froms = [t for t in third if t.startswith("from")]
    local = _from("minisim", minisim_names)
    if explore_names:
        local += _from("minisim.explore", explore_names)
    if testing:
        local += f"from minisim.testing import {testing}\n"
    return "\n".join(std_lines) + "\n\n" + "\n".join(plain + froms) + "\n\n" + local + QUIET


ACQ = """\
PX = 96 if SMALL else 200  # 1 µm per pixel: the ladder's 200 µm field
DURATION = 3.0 if SMALL else 20.0
acq = Acquisition(
    fps=20.0,
    duration_s=DURATION,
    optics=Optics(magnification=8.0),
    image_sensor=ImageSensor(n_px_height=PX, n_px_width=PX, pixel_pitch_um=8.0),
)
"""


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# --------------------------------------------------------------------------- anatomy
ANATOMY = [
    md("""
# Anatomy of a recording

The examples ladder builds a recording one step at a time; this notebook builds the same
chain with live controls. Each section changes one stage's physics and redraws its views
when you release a slider. Every view comes from a real (lazy) recording of the ladder's
acquisition (200 µm at 1 µm/px, 20 s at 20 fps): a frame costs one frame of pixel work.

Sections: [1 placement](#1-Placement) · [2 imaging](#2-Imaging-sandbox) ·
[3 activity](#3-Activity) · [4 motion](#4-Motion) ·
[5 neuropil and vessels](#5-Neuropil-and-vessels) · [6 light fields](#6-Light-fields) ·
[7 sensor](#7-Sensor) · [8 scrubber](#8-Frame-scrubber) · [9 bleaching](#9-Bleaching-planner)
"""),
    code(
        setup(
            "Acquisition, Bleaching, BrainMotion, CellActivity, CellOptics, Composite,\n    "
            "IlluminationProfile, ImageSensor, Leakage, Neuropil, Optics, PlaceNeurons, Sensor,\n    "
            "Spec, SpecWarning, Vasculature, VesselLayer, Vignette, simulate",
            "DETECT_SNR_THRESHOLD, FramePreview, activity_at_level, bleaching_curves,\n    "
            "blur_vs_depth, digitize_frame, field_profiles, kernel_curve, kernel_timing,\n    "
            "motion_trajectory, snr_vs_radius, taus_from_timing, vessel_mask",
            std=["import functools"],
            third=["import ipywidgets as W", "from IPython.display import HTML, display"],
        )
        + '''


def slider(value, low, high, step, description):
    """A slider that reports on release (the views recompute only then)."""
    kind = W.IntSlider if all(isinstance(v, int) for v in (value, low, high, step)) else W.FloatSlider
    return kind(value=value, min=low, max=high, step=step, description=description,
                continuous_update=False, style={"description_width": "initial"})


ERRORS = []


def live(function, **controls):
    """Controls above the view of ``function``, redrawn when a control is released.

    A view that fails shows its traceback under its controls and, on first display,
    stops the notebook (so a headless run reports it).
    """

    @functools.wraps(function)
    def guarded(**values):
        try:
            return function(**values)
        except Exception as err:
            ERRORS.append(err)
            raise

    ERRORS.clear()
    display(W.interactive(guarded, **controls))
    if ERRORS:
        raise ERRORS[-1]
'''
    ),
    code(ACQ),
    md("""
## 1. Placement

Cells are placed in 3-D: a density, a depth band, a soma size and how irregular the
outline is; ``cytosolic`` cells add dimmer dendrites. The side view shows the band and the
focal plane the optics will pick. *Ladder rung 1.*
"""),
    code("""
def show_placement(density=25000.0, depth_low=0.0, depth_high=200.0, soma=7.0,
                   irregularity=0.3, morphology="soma"):
    place = PlaceNeurons(density_per_mm3=density, depth_range_um=(depth_low, max(depth_high, depth_low)),
                         soma_radius_um=soma, irregularity=irregularity, morphology=morphology)
    spec = Spec(acquisition=acq, seed=1, steps=[place, CellActivity(), CellOptics(), Composite()])
    preview = FramePreview(spec)
    cells = preview.cells()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.imshow(preview.max_projection(0, 20), cmap="gray")
    a.set_title(f"{len(cells['row'])} cells (max over 1 s)")
    a.axis("off")
    b.scatter(cells["x_um"], cells["depth_um"], s=4)
    b.axhline(preview.focal_depth_um(), color="tab:red", label="focal plane")
    b.invert_yaxis()
    b.set(xlabel="x (µm)", ylabel="depth (µm)", title="side view")
    b.legend()
    plt.show()


live(show_placement,
     density=slider(25000.0, 2000.0, 80000.0, 1000.0, "density /mm³"),
     depth_low=slider(0.0, 0.0, 300.0, 5.0, "band top µm"),
     depth_high=slider(200.0, 0.0, 400.0, 5.0, "band bottom µm"),
     soma=slider(7.0, 3.0, 12.0, 0.5, "soma radius µm"),
     irregularity=slider(0.3, 0.0, 1.0, 0.05, "irregularity"),
     morphology=W.Dropdown(options=["soma", "cytosolic"], value="soma", description="morphology"))
"""),
    md("""
## 2. Imaging sandbox

Optics blur each cell by its depth: diffraction and scatter (a ramp with depth) and
defocus (a "V" around the focal plane) add in quadrature; scatter and NA² collection dim
it. Exposure and read noise set the photon budget. *Ladder rung 2 (and 6).*
"""),
    code("""
def show_imaging(na=0.45, magnification=8.0, pitch=8.0, auto_focus=True, focus=80.0,
                 curvature=0.0, photons=100.0, read_noise=2.0):
    optics = Optics(na=na, magnification=magnification,
                    field_curvature_radius_um=curvature or None)
    sensor = acq.image_sensor.model_copy(update={"pixel_pitch_um": pitch, "read_noise_e": read_noise})
    a = acq.model_copy(update={"optics": optics, "image_sensor": sensor,
                               "focal_depth_in_tissue_um": "auto" if auto_focus else focus})
    spec = Spec(acquisition=a, seed=1, steps=[PlaceNeurons(), CellActivity(), CellOptics(),
                                             Composite(), Sensor(photons_per_unit=photons)])
    preview = FramePreview(spec)
    focal = preview.focal_depth_um()
    blur = blur_vs_depth(spec.acquisition, np.linspace(0, 250, 200), focal)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.imshow(preview.frame(0), cmap="gray")
    left.set_title(f"frame 0 ({a.pixel_size_um:.2f} µm/px, focus {focal:.0f} µm)")
    left.axis("off")
    for name in ("defocus_um", "scatter_um", "diffraction_um", "total_um"):
        right.plot(blur["depth_um"], blur[name], label=name[:-3])
    right.set(xlabel="depth (µm)", ylabel="blur σ (µm)")
    twin = right.twinx()
    twin.plot(blur["depth_um"], blur["brightness"], color="tab:red", ls="--")
    twin.set_ylabel("brightness", color="tab:red")
    right.legend(fontsize=8)
    plt.show()


live(show_imaging,
     na=slider(0.45, 0.1, 1.0, 0.01, "NA"),
     magnification=slider(8.0, 2.0, 20.0, 0.5, "magnification"),
     pitch=slider(8.0, 2.0, 12.0, 0.5, "pixel pitch µm"),
     auto_focus=W.Checkbox(value=True, description="auto focus"),
     focus=slider(80.0, 0.0, 250.0, 5.0, "focal depth µm"),
     curvature=slider(0.0, 0.0, 5000.0, 100.0, "curvature R µm (0 flat)"),
     photons=slider(100.0, 10.0, 1000.0, 10.0, "photons/unit"),
     read_noise=slider(2.0, 0.0, 20.0, 0.5, "read noise e⁻"))
"""),
    md("""
## 3. Activity

One activity level moves the gate and the spike rates together from sparse to dense;
the kernel is set by its time constants or, equivalently, by its time to peak and
half-maximum width (converted with `taus_from_timing`). Brightness spread is the
log-normal gain's CV.
"""),
    code("""
def show_activity(level=0.5, by_timing=False, tau_rise=0.05, tau_decay=0.5, t_peak=0.13,
                  fwhm=0.5, brightness_cv=0.3):
    if by_timing:
        tau_rise, tau_decay = taus_from_timing(t_peak, fwhm)
    activity = activity_at_level(level, tau_rise_s=tau_rise, tau_decay_s=max(tau_decay, tau_rise * 1.01),
                                 brightness_cv=brightness_cv)
    spec = Spec(acquisition=acq, seed=1, steps=[PlaceNeurons(), activity, Composite()])
    gt = simulate(spec).ground_truth
    C, S = gt.C.values[:6], gt.S.values[:6]
    t = np.arange(C.shape[1]) / acq.fps
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=(3, 1))
    for i in range(len(C)):
        a.plot(t, C[i] + 12 * i, lw=0.8)
        spikes = t[S[i] > 0]
        a.plot(spikes, np.full(spikes.size, 12 * i - 1.5), "|", color="k", ms=4)
    a.set(xlabel="time (s)", title="calcium C with spike ticks")
    tk, k = kernel_curve(activity.tau_rise_s, activity.tau_decay_s)
    peak, width = kernel_timing(activity.tau_rise_s, activity.tau_decay_s)
    b.plot(tk, k)
    b.set(xlabel="s", title=f"kernel: peak {peak*1e3:.0f} ms, FWHM {width*1e3:.0f} ms")
    plt.show()


live(show_activity,
     level=slider(0.5, 0.0, 1.0, 0.05, "sparse → dense"),
     by_timing=W.Checkbox(value=False, description="set kernel by timing"),
     tau_rise=slider(0.05, 0.005, 0.3, 0.005, "τ rise s"),
     tau_decay=slider(0.5, 0.1, 2.0, 0.05, "τ decay s"),
     t_peak=slider(0.13, 0.02, 0.5, 0.01, "time to peak s"),
     fwhm=slider(0.5, 0.1, 2.0, 0.05, "half width s"),
     brightness_cv=slider(0.3, 0.0, 1.0, 0.05, "brightness CV"))
"""),
    md("""
## 4. Motion

The trajectory alone (`motion_trajectory`): the physical model is a damped oscillator
driven by a gait rhythm plus broadband sloshing. Left to right: the shifts over time,
their spectrum (the gait peak), the 2-D path, and a still vs moving time-average.
*Ladder rung 3.*
"""),
    code("""
def show_motion(model="physical", amplitude=5.0, gait_hz=7.0):
    motion = BrainMotion(model=model, motion_amplitude_um=amplitude, max_shift_um=max(15.0, amplitude),
                         locomotion_freq_hz=gait_hz)
    shifts = motion_trajectory(motion, acq, seed=1).values
    t = np.arange(len(shifts)) / acq.fps
    freq = np.fft.rfftfreq(len(shifts), 1 / acq.fps)
    power = np.abs(np.fft.rfft(shifts - shifts.mean(0), axis=0)) ** 2
    base = [PlaceNeurons(), CellActivity(), CellOptics(), Composite()]
    still = simulate(Spec(acquisition=acq, seed=1, steps=base)).observed[:40].mean("frame")
    moving = simulate(Spec(acquisition=acq, seed=1, steps=[*base, motion])).observed[:40].mean("frame")
    fig, ax = plt.subplots(1, 5, figsize=(16, 3.2))
    ax[0].plot(t, shifts[:, 0], label="dy")
    ax[0].plot(t, shifts[:, 1], label="dx")
    ax[0].set(xlabel="s", ylabel="px", title="shifts")
    ax[0].legend()
    ax[1].semilogy(freq[1:], power[1:, 0], label="dy")
    ax[1].semilogy(freq[1:], power[1:, 1], label="dx")
    ax[1].set(xlabel="Hz", title="spectrum")
    ax[2].plot(shifts[:, 1], shifts[:, 0], lw=0.6)
    ax[2].set(xlabel="dx px", ylabel="dy px", title="path", aspect="equal")
    ax[3].imshow(still, cmap="gray")
    ax[3].set_title("still: 2 s mean")
    ax[4].imshow(moving, cmap="gray")
    ax[4].set_title("moving: 2 s mean")
    for a in ax[3:]:
        a.axis("off")
    plt.show()


live(show_motion,
     model=W.Dropdown(options=["physical", "walk"], value="physical", description="model"),
     amplitude=slider(5.0, 0.5, 15.0, 0.5, "amplitude µm"),
     gait_hz=slider(7.0, 1.0, 12.0, 0.5, "gait Hz"))
"""),
    md("""
## 5. Neuropil and vessels

The haze is a few smooth spatial components, each with an envelope following the
population's lagged activity; vessels are grown trees whose blood absorbs light
(the transmission mask, `vessel_mask`). *Ladder rung 4.*
"""),
    code("""
def show_haze(amplitude=0.5, vessel_depth=60.0, roots=2, radius=8.0, opacity=0.85, branching=0.3):
    spec = Spec(acquisition=acq, seed=1, steps=[PlaceNeurons(), CellActivity(), CellOptics(),
                                               Composite(), Neuropil(amplitude=amplitude)])
    gt = simulate(spec).ground_truth
    layer = VesselLayer(depth_um=vessel_depth, n_roots=roots, root_radius_um=radius,
                        opacity=opacity, branch_prob=branching)
    mask = vessel_mask(Vasculature(enabled=True, layers=[layer]), acq, seed=1,
                       focal_depth_um=gt.focal_depth_um)
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.4))
    ax[0].imshow(gt.neuropil_spatial.sum("component"), cmap="magma")
    ax[0].set_title("neuropil: spatial sum")
    t = np.arange(acq.n_frames) / acq.fps
    ax[1].plot(t, gt.neuropil_temporal.values.T, lw=0.8)
    pop = gt.neuropil_population.values
    ax[1].plot(t, pop / pop.mean(), color="k", label="population")
    ax[1].set(xlabel="s", title="envelopes")
    ax[1].legend()
    ax[2].imshow(mask, cmap="gray", vmin=0, vmax=1)
    ax[2].set_title("vessel transmission")
    for a in (ax[0], ax[2]):
        a.axis("off")
    plt.show()


live(show_haze,
     amplitude=slider(0.5, 0.0, 2.0, 0.05, "neuropil amplitude"),
     vessel_depth=slider(60.0, 0.0, 200.0, 5.0, "vessel depth µm"),
     roots=slider(2, 1, 6, 1, "vessel count"),
     radius=slider(8.0, 2.0, 30.0, 1.0, "root radius µm"),
     opacity=slider(0.85, 0.0, 1.0, 0.05, "opacity"),
     branching=slider(0.3, 0.0, 0.6, 0.05, "branching"))
"""),
    md("""
## 6. Light fields

Illumination (excitation) and vignette (collection) fall off towards the corners;
leakage adds a stray-light glow. Right: the detection SNR of an in-focus cell's single
spike against its distance from the axis, with the detection threshold. *Ladder rung 5.*
"""),
    code("""
def show_fields(illumination=0.7, vignette=0.7, leakage=0.05, photons=100.0):
    spec = Spec(acquisition=acq, seed=1, steps=[
        PlaceNeurons(), CellActivity(), Composite(), IlluminationProfile(falloff=illumination),
        Vignette(falloff=vignette), Leakage(level=leakage), Sensor(photons_per_unit=photons)])
    fields = field_profiles(spec)
    snr = snr_vs_radius(spec)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, field in fields.items():
        ax[0].plot(field[PX // 2], label=name)
    ax[0].set(xlabel="x (px), middle row", title="fall-off profiles")
    ax[0].legend()
    ax[1].plot(snr["radius_um"], snr["snr"])
    ax[1].axhline(DETECT_SNR_THRESHOLD, color="tab:red", ls="--", label="threshold")
    ax[1].set(xlabel="radius (µm)", ylabel="SNR of one spike", title="SNR vs radius")
    ax[1].legend()
    plt.show()


live(show_fields,
     illumination=slider(0.7, 0.1, 1.0, 0.05, "illumination at corner"),
     vignette=slider(0.7, 0.1, 1.0, 0.05, "vignette at corner"),
     leakage=slider(0.05, 0.0, 0.5, 0.01, "leakage level"),
     photons=slider(100.0, 5.0, 1000.0, 5.0, "photons/unit"))
"""),
    md("""
## 7. Sensor

Shot noise (Poisson), read noise, gain and the ADC: a raw count frame with its
saturation fraction, the count histogram, and the noise-free vs noisy frame of one run
(``until="leakage"`` then the noise-free digitization of that same scene). *Ladder rung 6.*
"""),
    code("""
def show_sensor(photons=100.0, read_noise=2.0, bit_depth=8, gain=1.0):
    sensor_hw = acq.image_sensor.model_copy(
        update={"read_noise_e": read_noise, "bit_depth": bit_depth, "gain_adu_per_e": gain})
    a = acq.model_copy(update={"image_sensor": sensor_hw})
    spec = Spec(acquisition=a, seed=1, steps=[
        PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Neuropil(),
        IlluminationProfile(), Vignette(), Leakage(), Sensor(photons_per_unit=photons)])
    noisy = simulate(spec).observed[0].values
    scene = simulate(spec, until="leakage").observed[0].values
    clean = digitize_frame(scene, spec, frame=0, noise=False)
    top = a.image_sensor.max_count
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].imshow(clean, cmap="gray", vmin=0, vmax=top)
    ax[0].set_title("noise-free counts")
    ax[1].imshow(noisy, cmap="gray", vmin=0, vmax=top)
    ax[1].set_title(f"raw counts, {np.mean(noisy == top):.2%} saturated")
    ax[2].hist(noisy.ravel(), bins=min(top + 1, 256), log=True)
    ax[2].set(xlabel="count", title="histogram")
    for x in ax[:2]:
        x.axis("off")
    plt.show()


live(show_sensor,
     photons=slider(100.0, 5.0, 2000.0, 5.0, "photons/unit"),
     read_noise=slider(2.0, 0.0, 20.0, 0.5, "read noise e⁻"),
     bit_depth=W.Dropdown(options=[8, 10, 12, 16], value=8, description="bit depth"),
     gain=slider(1.0, 0.1, 5.0, 0.1, "gain ADU/e⁻"))
"""),
    md("""
## 8. Frame scrubber

The full chain over the whole recording. Dragging the slider computes only the chunk
holding that frame (`FramePreview`), so a long recording scrubs as fast as a short one.
Outlines mark the detectable cells, moved by the true shift of that frame.
"""),
    code("""
full = Spec(acquisition=acq, seed=1, steps=[
    PlaceNeurons(), CellActivity(), Bleaching(), CellOptics(), Composite(), Neuropil(),
    BrainMotion(motion_amplitude_um=4.0), IlluminationProfile(), Vignette(), Leakage(), Sensor()])
scrub = FramePreview(full)
truth = scrub.cells()


def show_frame(t=0):
    dy, dx = scrub.shift(t)
    frame = scrub.frame(t)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(frame, cmap="gray", vmin=0, vmax=np.percentile(frame, 99.9))
    keep = truth["detectable"] & truth["in_fov"]
    for r, c, rad in zip(truth["row"][keep], truth["col"][keep], truth["radius_px"][keep], strict=True):
        ax.add_patch(plt.Circle((c + dx, r + dy), rad, fill=False, color="lime", lw=0.6))
    ax.set_title(f"frame {t}: true shift ({dy:+.1f}, {dx:+.1f}) px")
    ax.axis("off")
    plt.show()


live(show_frame, t=slider(0, 0, scrub.n_frames - 1, 1, "frame"))
"""),
    code("""
from matplotlib import animation

frames = [scrub.frame(t) for t in range(0, min(40, scrub.n_frames))]
fig, ax = plt.subplots(figsize=(4, 4))
image = ax.imshow(frames[0], cmap="gray", vmin=0, vmax=np.percentile(frames[0], 99.9))
ax.axis("off")
movie = animation.FuncAnimation(fig, lambda i: [image.set_data(frames[i])], frames=len(frames),
                                interval=50)
plt.close(fig)
HTML(movie.to_jshtml())
"""),
    md("""
## 9. Bleaching planner

The bleaching pool of a cell emitting steadily: its fade within a session and its
recovery in the dark between sessions (`bleaching_curves`).
"""),
    code("""
def show_bleaching(susceptibility_log10=-5.2, emission=5.0, session_min=30.0, gap_h=24.0):
    bleaching = Bleaching(bleach_susceptibility=10**susceptibility_log10)
    curves = bleaching_curves(bleaching, emission=emission, session_s=60 * session_min,
                              gap_s=3600 * gap_h)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    ax[0].plot(curves["t_session_s"] / 60, curves["fade"])
    ax[0].axhline(curves["floor"], color="0.5", ls=":", label="floor")
    ax[0].set(xlabel="min", ylabel="intact fraction", title="fade within a session")
    ax[0].legend()
    ax[1].plot(curves["t_gap_s"] / 3600, curves["recovery"])
    ax[1].set(xlabel="h", title="recovery between sessions")
    plt.show()


live(show_bleaching,
     susceptibility_log10=slider(-5.2, -7.0, -3.0, 0.1, "log10 susceptibility"),
     emission=slider(5.0, 1.0, 50.0, 1.0, "emission"),
     session_min=slider(30.0, 1.0, 120.0, 1.0, "session min"),
     gap_h=slider(24.0, 1.0, 72.0, 1.0, "gap h"))
"""),
]

# --------------------------------------------------------------------------- demixing
DEMIXING = [
    md("""
# What a footprint-ROI trace mixes

Averaging the movie over a cell's footprint does not give that cell's trace: the ROI
also collects its blurred neighbours and the neuropil haze. With the exact ground truth
we can take an ROI trace apart, and compare it with *oracle* demixing — least squares
with the true footprints and haze — at several cell densities.
"""),
    code(
        setup(
            "Acquisition, CellActivity, CellOptics, Composite, ImageSensor, Neuropil, Optics,\n    "
            "PlaceNeurons, Spec, SpecWarning, footprint_mask, footprint_roi_trace, simulate",
        )
        + "\n"
        + ACQ
    ),
    code("""
def recording(density):
    spec = Spec(acquisition=acq, seed=1, steps=[
        PlaceNeurons(density_per_mm3=density), CellActivity(), CellOptics(), Composite(),
        Neuropil(amplitude=0.5)])
    return simulate(spec)


rec = recording(25000.0)
gt = rec.ground_truth
movie = rec.observed.values.astype(np.float64)
A = gt.A_observed.values.astype(np.float64)  # (cell, y, x) what the scope saw
C = gt.C.values
haze = movie - np.einsum("cyx,cf->fyx", A, C)  # everything that is not a cell
in_fov = np.flatnonzero(A.reshape(len(A), -1).max(1) > 0)
i = in_fov[np.argmax(A[in_fov].reshape(len(in_fov), -1).max(1))]  # the brightest cell
mask = footprint_mask(A[i])
own = A[i][mask].mean() * C[i]
neighbours = sum(A[j][mask].mean() * C[j] for j in in_fov if j != i)
neuropil = haze[:, mask].mean(1)
roi = footprint_roi_trace(movie, A[i])
print(f"cell {i}: ROI trace = own {own.mean():.3f} + neighbours {neighbours.mean():.3f} "
      f"+ neuropil {neuropil.mean():.3f} (mean levels)")
assert np.allclose(roi, own + neighbours + neuropil, rtol=1e-4, atol=1e-4)
"""),
    code("""
t = np.arange(len(roi)) / acq.fps
fig, ax = plt.subplots(figsize=(10, 3.5))
ax.plot(t, roi, color="k", label="ROI trace")
ax.plot(t, own, label="the cell")
ax.plot(t, neighbours, label="neighbours")
ax.plot(t, neuropil, label="neuropil")
ax.set(xlabel="time (s)", title="an ROI trace is a mixture")
ax.legend()
plt.show()
"""),
    md("""
## Oracle demixing vs density

Least squares with the true observed footprints and the true neuropil components
recovers each cell's trace exactly up to overlap-conditioning; the ROI mean does not.
The gap grows with density.
"""),
    code("""
def compare(density):
    r = recording(density)
    g = r.ground_truth
    m = r.observed.values.astype(np.float64).reshape(r.observed.shape[0], -1)
    footprints = g.A_observed.values.reshape(g.n_units, -1).astype(np.float64)
    keep = footprints.max(1) > 0.1 * footprints.max()  # cells that show in the field
    basis = np.vstack([footprints[keep], g.neuropil_spatial.values.reshape(-1, m.shape[1])])
    solution, *_ = np.linalg.lstsq(basis.T, m.T, rcond=None)
    truth = g.C.values[keep]
    roi = footprint_roi_trace(r.observed.values, g.A_observed.values[keep])
    with np.errstate(invalid="ignore"):  # a cell silent for the whole clip has no correlation
        r_roi, r_oracle = (np.nanmedian([np.corrcoef(a, b)[0, 1] for a, b in zip(x, truth, strict=True)])
                           for x in (roi, solution[: keep.sum()]))
    return keep.sum(), r_roi, r_oracle


densities = [10000.0, 40000.0] if SMALL else [5000.0, 15000.0, 30000.0, 60000.0]
rows = [compare(d) for d in densities]
for d, (n, r_roi, r_oracle) in zip(densities, rows, strict=True):
    print(f"{d:8.0f}/mm³: {n:4d} cells  median r(ROI)={r_roi:.3f}  r(oracle)={r_oracle:.3f}")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(densities, [r[1] for r in rows], "o-", label="ROI mean")
ax.plot(densities, [r[2] for r in rows], "o-", label="oracle least squares")
ax.set(xlabel="density (cells/mm³)", ylabel="median trace correlation")
ax.legend()
plt.show()
"""),
]

# --------------------------------------------------------------------------- metrics
METRICS = [
    md("""
# Scoring an analysis: the metrics

How `minisim.testing.score` judges a pipeline's output against the ground truth:
footprints are matched (IoU or cosine, Hungarian assignment), a global offset between
the estimate's frame and the truth's is recovered, then traces are correlated and the
motion correction is compared with the true shifts.
"""),
    code(
        setup(
            "BrainMotion, SpecWarning, footprint_roi_trace, global_shift_from_trajectories,\n    "
            "hungarian_match, shift_rmse, trace_pearson",
            testing="Estimate, make_recording, score",
        )
        + """

rec = make_recording(n_cells=12, n_px=64 if SMALL else 128, duration_s=2.0 if SMALL else 6.0,
                     motion=BrainMotion(motion_amplitude_um=2.0, max_shift_um=4.0), seed=3)
gt = rec.ground_truth
A_true = gt.A_observed.values
C_true = gt.C.values
print(gt)
"""
    ),
    md(
        "## Matching by IoU vs cosine\n\nA perturbed copy of the truth: footprints shifted by one pixel and rescaled."
    ),
    code("""
rng = np.random.default_rng(0)
A_est = np.roll(A_true, 1, axis=2) * rng.uniform(0.5, 2.0, (len(A_true), 1, 1))
for metric in ("iou", "cosine"):
    m = hungarian_match(A_est, A_true, metric=metric)
    print(f"{metric:7s} recall {m.recall():.2f}  mean similarity {m.mean_similarity:.3f}")
fig, ax = plt.subplots(1, 2, figsize=(8, 3.6))
for a, metric in zip(ax, ("iou", "cosine"), strict=True):
    a.imshow(hungarian_match(A_est, A_true, metric=metric).similarity_matrix, vmin=0, vmax=1)
    a.set(title=metric, xlabel="true", ylabel="estimated")
plt.show()
"""),
    md(
        "## Global offsets\n\nAn estimate in a frame shifted by (3, −2) px: the offset comes back from the trajectories or from phase correlation."
    ),
    code("""
offset = (3, -2)
A_off = np.roll(A_true, offset, axis=(1, 2))
for shift in (None, "auto"):
    m = hungarian_match(A_off, A_true, shift=shift)
    print(f"shift={shift!s:5s}: applied {m.shift}, recall {m.recall():.2f}")
true_shifts = gt.shifts.values
# A pipeline whose frame sits `offset` away reports corrections off by that much.
estimate_correction = -(true_shifts + np.array(offset))
print("offset from trajectories:", global_shift_from_trajectories(estimate_correction, true_shifts))
"""),
    md("## Trace correlation and motion RMSE"),
    code("""
noisy = C_true + rng.normal(0, 0.5, C_true.shape)
pairs = tuple((k, k) for k in range(len(C_true)))
r = trace_pearson(noisy, C_true, pairs)
print(f"median trace r = {np.median(r):.3f}")
correction = -gt.shifts.values + rng.normal(0, 0.3, gt.shifts.shape)
print(f"motion RMSE = {shift_rmse(correction, gt.shifts.values, correction=True):.3f} px")
"""),
    md(
        "## A mock pipeline, scored\n\nThresholded mean image as footprints, ROI means as traces, the true shifts (negated) plus noise as motion correction."
    ),
    code("""
def mock_pipeline(recording):
    movie = recording.observed.values.astype(float)
    A = recording.ground_truth.A_observed.values
    peaks = A.reshape(len(A), -1).max(1)
    found = A[peaks > 0.3 * peaks.max()]  # "detected": the brighter cells
    C = footprint_roi_trace(movie, found)
    shifts = -recording.ground_truth.shifts.values + rng.normal(0, 0.2, (len(movie), 2))
    return Estimate(A=found, C=C, shifts=shifts)


report = score(mock_pipeline(rec), rec)
print(report)
"""),
]

# --------------------------------------------------------------------------- studio
STUDIO = [
    md("""
# Studio

Design a recording: scope and anatomy, which steps run, activity, then generate it
(Zarr or video). The preview shows any frame of the full duration at once (only its chunk
is computed); "Save spec" and "copy as Python" take the design away. The same app runs
as a web page with `minisim explore`.
"""),
    code("""
import os

import panel as pn

from minisim.explore.studio import Studio

pn.extension()
SMALL = os.environ.get("MINISIM_NOTEBOOK_SMALL") == "1"
studio = Studio(window_px=96 if SMALL else 256)
studio.panel()
"""),
    md("The spec the controls describe, as code:"),
    code("""
print(studio.python_code.value)
"""),
]

NOTEBOOKS = {
    "anatomy": ANATOMY,
    "demixing": DEMIXING,
    "metrics": METRICS,
    "studio": STUDIO,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name}-{i:02d}"  # stable ids: rebuilding gives identical files
    return nb


def main(argv=None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for name in NOTEBOOKS:
        path = OUT / f"{name}.ipynb"
        text = nbformat.writes(build(name)) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale notebooks (run python tools/build_notebooks.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
