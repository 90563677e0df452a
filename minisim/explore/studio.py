"""The studio: design a recording with sliders, preview any frame, generate it.

The same app runs in a notebook (``Studio().panel()``) and as a web page
(``minisim explore``, served by Panel on 127.0.0.1). Every control maps to a field of
the spec; a physics change rebuilds the lazy preview of a small window (only what that
frame needs is computed), a frame change computes one frame.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from pathlib import Path

from ..acquisition import Acquisition, ImageSensor, Optics
from ..errors import SpecWarning
from ..presets import build_spec, ca1, cortex_l23, generic_1p, miniscope_v4
from ..spec import Spec
from ..steps import (
    Bleaching,
    BrainMotion,
    CellActivity,
    CellOptics,
    Composite,
    IlluminationProfile,
    Leakage,
    Neuropil,
    PlaceNeurons,
    Sensor,
    Vasculature,
    VesselLayer,
    Vignette,
)
from .codegen import estimate_size, format_bytes, spec_to_python
from .physics import activity_preset, kernel_timing
from .preview import FramePreview
from .render import frame_png, side_view_png

__all__ = ["PRESETS", "Studio", "default_spec", "require_panel", "serve"]

INSTALL_HINT = 'the studio needs the explore extra: pip install "minisim[explore]"'

#: The studio's presets: a scope imaging a region (see :mod:`minisim.presets`).
PRESETS = {
    "Miniscope V4 + CA1": (miniscope_v4, ca1),
    "Miniscope V4 + cortex L2/3": (miniscope_v4, cortex_l23),
    "generic 1p + CA1": (generic_1p, ca1),
}

#: Steps the studio can switch on and off (placement, activity and composite are always on).
OPTIONAL_STEPS = (
    "optics",
    "bleaching",
    "neuropil",
    "vasculature",
    "brain_motion",
    "illumination_profile",
    "vignette",
    "leakage",
    "sensor",
)


def require_panel():
    """Import Panel, or fail with one line naming the extra to install."""
    try:
        import panel
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return panel


def default_spec() -> Spec:
    """The studio's starting point: the examples ladder's full chain, 30 s at 20 fps."""
    acq = Acquisition(
        fps=20.0,
        duration_s=30.0,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=256, n_px_width=256, pixel_pitch_um=8.0),
    )
    steps = [PlaceNeurons(), CellActivity(), Bleaching(), CellOptics(), Composite(), Neuropil(),
             BrainMotion(), IlluminationProfile(), Vignette(), Leakage(), Sensor()]  # fmt: skip
    return Spec(acquisition=acq, seed=1, steps=steps)


def _level_of(activity: CellActivity) -> float:
    # The activity level whose preset is closest to this step's switching probability.
    import numpy as np

    levels = np.linspace(0, 1, 101)
    p = [activity_preset(a)["p_quiescent_to_active"] for a in levels]
    return float(levels[int(np.argmin(np.abs(np.array(p) - activity.p_quiescent_to_active)))])


class Studio:
    """Sliders for a spec, a live preview, and a generate button.

    Parameters
    ----------
    spec : Spec, optional
        Where the controls start (default :func:`default_spec`).
    window_px : int
        Side of the preview window (a centred crop of the sensor, same pixel size).
    """

    def __init__(self, spec: Spec | None = None, *, window_px: int = 256):
        pn = require_panel()
        self.pn = pn
        self.window_px = window_px
        self.base = spec if spec is not None else default_spec()
        self.preview: FramePreview | None = None
        self._spec: Spec | None = None
        self._frame_vmax: float | None = None
        self._job: dict | None = None
        self._make_widgets()
        self._load(self.base)
        self._wire()
        self.refresh()

    # ------------------------------------------------------------------ controls
    def _make_widgets(self):
        pn, w = self.pn, self.pn.widgets
        self.preset = w.Select(label="preset", options=["(spec)", *PRESETS], value="(spec)")
        self.steps = w.CheckBoxGroup(label="steps", options=list(OPTIONAL_STEPS), inline=False)
        # scope
        self.na = w.FloatSlider(label="NA", start=0.1, end=1.0, step=0.01)
        self.magnification = w.FloatSlider(label="magnification", start=1.0, end=20.0, step=0.1)
        self.pitch = w.FloatSlider(label="pixel pitch (µm)", start=1.0, end=12.0, step=0.1)
        self.n_px = w.IntSlider(label="sensor size (px)", start=64, end=1024, step=8)
        self.focus_auto = w.Checkbox(label="auto focus")
        self.focus = w.FloatSlider(label="focal depth (µm)", start=0.0, end=400.0, step=1.0)
        self.curvature = w.FloatSlider(
            label="field curvature radius (µm, 0 = flat)", start=0.0, end=10000.0, step=100.0
        )
        self.photons = w.FloatSlider(label="photons per unit", start=5.0, end=2000.0, step=5.0)
        self.read_noise = w.FloatSlider(label="read noise (e⁻)", start=0.0, end=20.0, step=0.1)
        self.bit_depth = w.Select(label="bit depth", options=[8, 10, 12, 16])
        # anatomy
        self.density = w.FloatSlider(
            label="density (cells/mm³)", start=1000.0, end=100000.0, step=1000.0
        )
        self.soma = w.FloatSlider(label="soma radius (µm)", start=2.0, end=15.0, step=0.5)
        self.depth_band = w.RangeSlider(label="depth band (µm)", start=0.0, end=400.0, step=5.0)
        self.morphology = w.Select(label="morphology", options=["soma", "cytosolic"])
        self.neuropil_amp = w.FloatSlider(label="neuropil amplitude", start=0.0, end=2.0, step=0.05)
        self.vessel_opacity = w.FloatSlider(label="vessel opacity", start=0.0, end=1.0, step=0.05)
        self.motion_amp = w.FloatSlider(
            label="motion amplitude (µm)", start=0.5, end=15.0, step=0.5
        )
        # activity
        self.level = w.FloatSlider(label="activity (sparse → dense)", start=0.0, end=1.0, step=0.05)
        self.tau_rise = w.FloatSlider(label="τ rise (s)", start=0.005, end=0.5, step=0.005)
        self.tau_decay = w.FloatSlider(label="τ decay (s)", start=0.05, end=3.0, step=0.05)
        self.brightness_cv = w.FloatSlider(
            label="brightness spread (CV)", start=0, end=1, step=0.05
        )
        self.kernel_info = pn.pane.Markdown("", sizing_mode="stretch_width")
        # generate
        self.duration = w.FloatInput(label="duration (s)", start=0.05, step=1.0)
        self.fps = w.FloatInput(label="fps", start=1.0, step=1.0)
        self.seed = w.IntInput(label="seed", start=0, step=1)
        self.output_path = w.TextInput(label="output (.zarr, .avi or .mkv)", value="recording.zarr")
        self.size_info = pn.pane.Markdown("")
        self.generate_button = w.Button(label="Generate", color="primary")
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False)
        self.summary = pn.pane.Markdown("")
        # preview
        self.frame = w.IntSlider(
            label="frame", start=0, end=1, value=0, sizing_mode="stretch_width"
        )
        self.overlay = w.Checkbox(label="outline detectable cells (ground truth)", value=True)
        self.frame_image = pn.pane.PNG(None, width=360, height=360, name="frame_view")
        self.maxproj_image = pn.pane.PNG(None, width=260, height=260)
        self.side_image = pn.pane.PNG(None, width=360, height=234)
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width")
        # spec out
        self.spec_download = w.FileDownload(
            callback=self._spec_json_file, filename="spec.json", label="Save spec (JSON)"
        )
        self.python_code = w.TextAreaInput(
            label="copy as Python", height=260, sizing_mode="stretch_width", disabled=False
        )
        self.python_download = w.FileDownload(
            callback=self._spec_python_file, filename="make_spec.py", label="Save as Python"
        )

    def _physics_widgets(self):
        return [
            self.steps, self.na, self.magnification, self.pitch, self.n_px, self.focus_auto,
            self.focus, self.curvature, self.photons, self.read_noise, self.bit_depth,
            self.density, self.soma, self.depth_band, self.morphology, self.neuropil_amp,
            self.vessel_opacity, self.motion_amp, self.level, self.tau_rise, self.tau_decay,
            self.brightness_cv, self.duration, self.fps, self.seed,
        ]  # fmt: skip

    def _load(self, spec: Spec):
        """Set every control from a spec (without triggering a refresh per control)."""
        self._loading = True
        try:
            acq = spec.acquisition
            kinds = {s.kind for s in spec.steps}
            self.steps.value = [k for k in OPTIONAL_STEPS if k in kinds]
            self.na.value = acq.optics.na
            self.magnification.value = acq.optics.magnification
            self.pitch.value = acq.image_sensor.pixel_pitch_um
            self.n_px.value = acq.image_sensor.n_px_height
            auto = acq.focal_depth_in_tissue_um == "auto"
            self.focus_auto.value = auto
            self.focus.value = 100.0 if auto else float(acq.focal_depth_in_tissue_um)
            self.curvature.value = float(acq.optics.field_curvature_radius_um or 0.0)
            sensor = spec.step("sensor") or Sensor()
            self.photons.value = float(sensor.photons_per_unit)
            self.read_noise.value = acq.image_sensor.read_noise_e
            self.bit_depth.value = acq.image_sensor.bit_depth
            place = spec.step("place_neurons") or PlaceNeurons()
            self.density.value = place.density_per_mm3
            self.soma.value = place.soma_radius_um
            self.depth_band.value = tuple(place.depth_range_um)
            self.morphology.value = place.morphology
            self.neuropil_amp.value = (spec.step("neuropil") or Neuropil()).amplitude
            vessels = spec.step("vasculature")
            layer = vessels.layers[0] if vessels is not None and vessels.layers else VesselLayer()
            self.vessel_opacity.value = layer.opacity
            self.motion_amp.value = (spec.step("brain_motion") or BrainMotion()).motion_amplitude_um
            activity = spec.step("cell_activity") or CellActivity()
            self.level.value = _level_of(activity)
            self.tau_rise.value = activity.tau_rise_s
            self.tau_decay.value = activity.tau_decay_s
            self.brightness_cv.value = activity.brightness_cv
            self.duration.value = acq.duration_s
            self.fps.value = acq.fps
            self.seed.value = spec.seed
            self.base = spec
        finally:
            self._loading = False

    def _wire(self):
        for widget in self._physics_widgets():
            # Sliders report on release (value_throttled); other widgets on change.
            name = "value_throttled" if "value_throttled" in widget.param else "value"
            widget.param.watch(self._on_physics, name)
        self.frame.param.watch(self._on_frame, "value_throttled")
        self.overlay.param.watch(self._on_frame, "value")
        self.preset.param.watch(self._on_preset, "value")
        self.output_path.param.watch(lambda *_: self._show_size(), "value")
        self.generate_button.on_click(self._on_generate)

    # ------------------------------------------------------------------ the spec
    def current_spec(self) -> Spec:
        """The spec the controls describe (raises ``ValueError`` naming a bad field)."""
        base = self.base
        on = set(self.steps.value)
        acq = base.acquisition.model_copy(
            update={
                "optics": base.acquisition.optics.model_copy(
                    update={
                        "na": self.na.value,
                        "magnification": self.magnification.value,
                        "field_curvature_radius_um": self.curvature.value or None,
                    }
                ),
                "image_sensor": base.acquisition.image_sensor.model_copy(
                    update={
                        "pixel_pitch_um": self.pitch.value,
                        "n_px_height": self.n_px.value,
                        "n_px_width": self.n_px.value,
                        "read_noise_e": self.read_noise.value,
                        "bit_depth": int(self.bit_depth.value),
                    }
                ),
                "focal_depth_in_tissue_um": "auto" if self.focus_auto.value else self.focus.value,
                "duration_s": float(self.duration.value),
                "fps": float(self.fps.value),
            }
        )
        place = base.step("place_neurons") or PlaceNeurons()
        place = place.model_copy(
            update={
                "density_per_mm3": self.density.value,
                "soma_radius_um": self.soma.value,
                "depth_range_um": tuple(self.depth_band.value),
                "morphology": self.morphology.value,
            }
        )
        activity = (base.step("cell_activity") or CellActivity()).model_copy(
            update=activity_preset(self.level.value)
            | {
                "tau_rise_s": self.tau_rise.value,
                "tau_decay_s": self.tau_decay.value,
                "brightness_cv": self.brightness_cv.value,
            }
        )
        steps = [place, activity, Composite()]
        defaults = {
            "optics": CellOptics(),
            "bleaching": Bleaching(),
            "neuropil": Neuropil(),
            "vasculature": Vasculature(enabled=True, layers=[VesselLayer()]),
            "brain_motion": BrainMotion(),
            "illumination_profile": IlluminationProfile(),
            "vignette": Vignette(),
            "leakage": Leakage(),
            "sensor": Sensor(),
        }
        for kind in OPTIONAL_STEPS:
            if kind not in on:
                continue
            step = base.step(kind) or defaults[kind]
            if kind == "neuropil":
                step = step.model_copy(update={"amplitude": self.neuropil_amp.value})
            elif kind == "vasculature":
                layers = step.layers or (VesselLayer(),)
                first = layers[0].model_copy(update={"opacity": self.vessel_opacity.value})
                step = step.model_copy(update={"enabled": True, "layers": (first, *layers[1:])})
            elif kind == "brain_motion":
                amp = self.motion_amp.value
                step = step.model_copy(
                    update={"motion_amplitude_um": amp, "max_shift_um": max(step.max_shift_um, amp)}
                )
            elif kind == "sensor":
                step = step.model_copy(update={"photons_per_unit": self.photons.value})
            steps.append(step)
        # Validate everything (model_copy does not): a round trip through the schema.
        payload = {
            "acquisition": acq.model_dump(),
            "seed": int(self.seed.value),
            "steps": [s.model_dump() for s in steps],
            "output": base.output.model_dump(),
        }
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpecWarning)
            return Spec.model_validate(payload)

    # ------------------------------------------------------------------ callbacks
    def _on_preset(self, event):
        if event.new not in PRESETS:
            return
        scope, region = PRESETS[event.new]
        spec = build_spec(scope(), region(), duration_s=30.0, seed=int(self.seed.value),
                          extra_steps=[BrainMotion(motion_amplitude_um=5.0, max_shift_um=10.0)])  # fmt: skip
        self._load(spec)
        self.refresh()

    def _on_physics(self, *_):
        if not self._loading:
            self.refresh()

    def _on_frame(self, *_):
        self.show_frame()

    def refresh(self):
        """Rebuild the preview from the controls (a physics change) and redraw."""
        try:
            spec = self.current_spec()
        except ValueError as err:
            self.status.object = f"**Invalid spec**: {_first_line(err)}"
            return
        self._spec = spec
        self.preview = FramePreview(spec, window_px=self.window_px)
        n = self.preview.n_frames
        self.frame.end = max(n - 1, 1)
        if self.frame.value > n - 1:
            self.frame.value = n - 1
        self._frame_vmax = None
        t_peak, fwhm = kernel_timing(self.tau_rise.value, self.tau_decay.value)
        self.kernel_info.object = (
            f"kernel: peak at {t_peak * 1000:.0f} ms, FWHM {fwhm * 1000:.0f} ms"
        )
        self._show_size()
        self.python_code.value = spec_to_python(spec)
        self.show_frame()
        self.show_static()

    def _vmax(self) -> float:
        # One display range per physics setting (from frame 0), so scrubbing compares
        # frames on the same grey scale.
        if self._frame_vmax is None:
            import numpy as np

            self._frame_vmax = float(np.percentile(self.preview.frame(0), 99.9)) or 1.0
        return self._frame_vmax

    def show_frame(self):
        """Draw the frame under the slider (one frame of pixel work)."""
        if self.preview is None:
            return
        start = time.perf_counter()
        t = min(int(self.frame.value), self.preview.n_frames - 1)
        try:
            frame = self.preview.frame(t)
            cells = self.preview.cells() if self.overlay.value else None
            shift = self.preview.shift(t)
        except Exception as err:  # a bad combination shows up here, not as a crash
            self.status.object = f"**Preview failed**: {_first_line(err)}"
            return
        seconds = t / self.preview.spec.acquisition.fps
        self.frame_image.object = frame_png(
            frame, vmax=self._vmax(), cells=cells, shift=shift,
            title=f"frame {t} ({seconds:.2f} s), shift ({shift[0]:+.1f}, {shift[1]:+.1f}) px",
        )  # fmt: skip
        h, w = self.preview.spec.acquisition.fov_shape
        self.status.object = (
            f"preview {h}×{w} px window · frame {t} in {time.perf_counter() - start:.2f} s"
        )

    def show_static(self):
        """Max projection and side view of the current spec."""
        try:
            t = int(self.frame.value)
            self.maxproj_image.object = frame_png(
                self.preview.max_projection(t), vmax=self._vmax(), title="max projection",
                size_in=2.6,
            )  # fmt: skip
            self.side_image.object = side_view_png(
                self.preview.cells(), self.preview.focal_depth_um()
            )
        except Exception as err:
            self.status.object = f"**Preview failed**: {_first_line(err)}"

    def _show_size(self):
        if self._spec is None:
            return
        size = estimate_size(self._spec)
        self.size_info.object = (
            f"{size['frames']} frames of {size['height']}×{size['width']} px, "
            f"{size['bytes_per_pixel']} B/px: **{format_bytes(size['movie_bytes'])}** uncompressed"
        )

    def _spec_json_file(self):
        import io

        spec = self._spec or self.current_spec()
        return io.StringIO(json.dumps(json.loads(spec.model_dump_json()), indent=2))

    def _spec_python_file(self):
        import io

        return io.StringIO(spec_to_python(self._spec or self.current_spec()))

    # ------------------------------------------------------------------ generate
    def _on_generate(self, *_):
        if self._job is not None and not self._job["done"]:
            return
        try:
            spec = self.current_spec()
        except ValueError as err:
            self.summary.object = f"**Invalid spec**: {_first_line(err)}"
            return
        path = self.output_path.value.strip()
        self.generate(spec, path, background=True)

    def generate(self, spec: Spec, path: str, *, background: bool = False) -> dict:
        """Write ``spec``'s full recording to ``path`` (.zarr store or .avi/.mkv video).

        Never replaces anything: an existing path is refused before any work.
        Returns the job's state dict (``done``, ``error``, ``summary``).
        """
        job = {"done": False, "error": None, "summary": "", "finished": 0, "total": 1}
        self._job = job
        self.progress.visible = True
        self.progress.value = 0
        self.summary.object = f"generating `{path}` …"
        if background:
            threading.Thread(target=self._run_job, args=(spec, path, job), daemon=True).start()
            self._poller = self.pn.state.add_periodic_callback(self._poll, period=300)
        else:
            self._run_job(spec, path, job)
            self._poll()
        return job

    def _run_job(self, spec: Spec, path: str, job: dict):
        import warnings

        from dask.callbacks import Callback

        from ..simulate import simulate

        class Count(Callback):
            def _start(self, dsk):
                job["total"] = max(len(dsk), 1)

            def _posttask(self, key, result, dsk, state, id):
                job["finished"] += 1

        start = time.perf_counter()
        try:
            if Path(path).exists():
                # Never replace anything, ours or not: the user picks a new path.
                raise FileExistsError(
                    f"{path} already exists: choose another output path (the studio never "
                    "replaces files)"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SpecWarning)
                rec = simulate(spec)
            with Count():
                if Path(path).suffix.lower() in (".avi", ".mkv"):
                    vmax = None if spec.step("sensor") else float(rec.observed.max())
                    rec.write_video(path, vmax=vmax, progress=False)
                else:
                    rec.to_zarr(path, mode="w-")
            n, h, w = rec.observed.shape
            job["summary"] = (
                f"wrote `{path}`: {rec.dataset.sizes['cell']} cells, {n} frames of {h}×{w} px "
                f"in {time.perf_counter() - start:.1f} s"
            )
        except Exception as err:
            job["error"] = _first_line(err)
            job["trace"] = traceback.format_exc()
        finally:
            job["done"] = True

    def _poll(self):
        job = self._job
        if job is None:
            return
        self.progress.value = int(100 * min(job["finished"] / job["total"], 1.0))
        if job["done"]:
            self.progress.value = 100 if job["error"] is None else self.progress.value
            self.summary.object = job["summary"] if job["error"] is None else (
                f"**Generation failed**: {job['error']}"
            )  # fmt: skip
            poller = getattr(self, "_poller", None)
            if poller is not None:
                poller.stop()
                self._poller = None

    # ------------------------------------------------------------------ layout
    def panel(self):
        """The studio as a Panel layout (display it in a notebook or serve it)."""
        pn = self.pn
        card = pn.Card
        scope = card(
            self.preset, self.na, self.magnification, self.pitch, self.n_px, self.focus_auto,
            self.focus, self.curvature, self.photons, self.read_noise, self.bit_depth,
            title="Scope", collapsed=False,
        )  # fmt: skip
        anatomy = card(
            self.density, self.soma, self.depth_band, self.morphology, self.neuropil_amp,
            self.vessel_opacity, self.motion_amp, title="Anatomy", collapsed=True,
        )  # fmt: skip
        steps = card(self.steps, title="Steps", collapsed=True)
        activity = card(
            self.level, self.tau_rise, self.tau_decay, self.kernel_info, self.brightness_cv,
            title="Activity", collapsed=True,
        )  # fmt: skip
        generate = card(
            self.duration, self.fps, self.seed, self.output_path, self.size_info,
            self.generate_button, self.progress, self.summary, title="Generate",
        )  # fmt: skip
        controls = pn.Column(scope, anatomy, steps, activity, generate, width=340)
        preview = pn.Column(
            "## Preview",
            self.frame,
            self.overlay,
            pn.Row(self.frame_image, pn.Column(self.maxproj_image)),
            self.side_image,
            self.status,
            pn.Row(self.spec_download, self.python_download),
            self.python_code,
            sizing_mode="stretch_width",
        )
        return pn.Row(controls, preview, sizing_mode="stretch_width")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return " ".join(text[:3]) if text else type(err).__name__


def serve(spec: Spec | None = None, *, port: int = 5006, show: bool = True):
    """Serve the studio on http://127.0.0.1:PORT until interrupted (Ctrl-C)."""
    pn = require_panel()

    def app():
        pn.extension()
        return pn.template.BootstrapTemplate(title="minisim studio", main=[Studio(spec).panel()])

    return pn.serve(
        {"/": app},
        port=port,
        address="127.0.0.1",
        websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"],
        show=show,
        title="minisim studio",
        threaded=False,  # blocks here, serving, until interrupted
        start=True,
    )
