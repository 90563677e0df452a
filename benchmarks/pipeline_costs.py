"""What each realism effect costs a real pipeline: suite2p on the ladder's full chain.

Usage::

    python benchmarks/pipeline_costs.py --python /path/to/suite2p-env/bin/python [--small]

suite2p runs in its own environment (it pins torch and its own numpy), so this script
drives it through a subprocess: ``--python`` is that environment's interpreter, in which
``pip install suite2p`` is enough (suite2p 1.1 was measured). The same file is the worker
(``--worker FOLDER``), importing only numpy and suite2p there.

For every variant of the ladder's full chain (rung 6: 200 × 200 µm at 1 µm/px, 20 s at
20 fps, seed 1) the recording is exported with ``Recording.to_tiff``, suite2p registers
it (rigidly unless a row says otherwise), detects ROIs and extracts their fluorescence,
and ``minisim.testing.score`` scores what it found against the recording's own ground
truth:

* **motion error**: ``shift_rmse`` of suite2p's per-frame correction (the negated
  ``yoff``/``xoff``) against ``gt.shifts``, px, after removing the template offset;
* **recall**: ``hungarian_match`` (IoU ≥ 0.5) of suite2p's ROIs (those it classifies as
  cells) against the detectable in-field cells; the denominator is printed;
* **trace r**: median ``trace_pearson`` of the matched pairs' F − 0.7·Fneu against C;
* **displacement error**: ``displacement_rmse`` of the displacement field suite2p applied
  against ``gt.displacement`` over every pixel, frame and axis, after removing the
  template's own displacement (the per-pixel time mean of the error, as the motion error
  removes the template offset). With rigid registration the field is its per-frame shift
  everywhere (on a rigid truth this equals the motion error); with non-rigid registration
  it adds the per-block offsets upsampled to every pixel as suite2p itself does
  (:func:`block_field`). suite2p's blocks overlap, so they are not the equal tiles that
  ``displacement_rmse`` scores per patch: the dense field is compared instead.

The variants: the CMOS imperfections of :data:`CMOS` (typical values: the Miniscope V4's
sensor has no published datasheet, so ``ImageSensor`` defaults them to zero), 5% dropped
frames, one still vessel layer, the same layer breathing (to compare with the still one),
LED flicker when the example plugin step ``minisim_flicker`` is installed
(``examples/plugin_step``, imported from this checkout), and the chain's brain motion
bent by a non-rigid field (:data:`NONRIGID`), registered once rigidly and once with
suite2p's non-rigid (block) registration. ``--one-photon`` registers every row with
suite2p's advised smoothing for one-photon data instead of its two-photon default.

With dropped frames the ground truth is cut alike (``DroppedFrames`` cuts every per-frame
truth), so the scores compare the frames that arrived with the truth of those frames.
Numbers go to stdout as a table and to ``pipeline_costs.json`` in ``--workdir``
(default ``bench-results/pipeline_costs/``, which must be new or empty).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: suite2p's fraction of the surrounding neuropil subtracted from each ROI (its default).
NEUROPIL_COEFFICIENT = 0.7


def worker(folder: str, fps: float, diameter_px: float, block_px: int, one_photon: bool) -> None:
    """In suite2p's environment: run it on ``folder/in/*.tif``, save ``folder/result.npz``.

    ``block_px`` > 0 turns on suite2p's non-rigid (block) registration with square blocks
    of that size; 0 keeps it rigid. ``one_photon`` follows suite2p's own advice for
    one-photon recordings: spatial smoothing of 4 px for registration (its settings
    reference: "3-5 may work well for 1P recordings"; the default, 1.15, suits two-photon).
    """
    import numpy as np
    import suite2p

    settings = suite2p.default_settings()
    settings.update(torch_device="cpu", fs=fps, tau=1.0, diameter=[diameter_px, diameter_px])
    settings["registration"]["nonrigid"] = block_px > 0
    if block_px > 0:
        settings["registration"]["block_size"] = (block_px, block_px)
    if one_photon:
        settings["registration"]["smooth_sigma"] = ONE_PHOTON_SMOOTH_SIGMA_PX
    settings["run"]["do_regmetrics"] = False
    db = suite2p.default_db()
    db.update(data_path=[f"{folder}/in"], save_path0=f"{folder}/out")
    suite2p.run_s2p(db=db, settings=settings)
    plane = Path(folder, "out", "suite2p", "plane0")
    stat = np.load(plane / "stat.npy", allow_pickle=True)
    reg = np.load(plane / "reg_outputs.npy", allow_pickle=True).item()
    shape = reg["meanImg"].shape
    footprints = np.zeros((len(stat), *shape), np.float32)
    for k, roi in enumerate(stat):
        footprints[k, roi["ypix"], roi["xpix"]] = roi["lam"]
    blocks = {}
    if block_px > 0:
        # suite2p does not save its block grid: rebuild it as registration made it.
        from suite2p.registration.nonrigid import make_blocks

        yblock, xblock, nblocks = make_blocks(*shape, (block_px, block_px))[:3]
        blocks = dict(
            yoff1=np.asarray(reg["yoff1"]),  # (frame, block), blocks row-major
            xoff1=np.asarray(reg["xoff1"]),
            yblock=np.asarray(yblock),  # (block, [start, stop)) rows
            xblock=np.asarray(xblock),
            nblocks=np.asarray(nblocks),
        )
    np.savez(
        Path(folder, "result.npz"),
        A=footprints,
        F=np.load(plane / "F.npy"),
        Fneu=np.load(plane / "Fneu.npy"),
        iscell=np.load(plane / "iscell.npy")[:, 0] > 0,
        yoff=reg["yoff"],
        xoff=reg["xoff"],
        **blocks,
    )


def block_field(out, shape: tuple[int, int]):
    """suite2p's per-frame dense displacement (frame, y, x, 2) px: rigid + non-rigid.

    Registration rolls each frame by −(yoff, xoff), then resamples it at p + u(p), where u
    is the per-block offset (yoff1, xoff1) upsampled exactly as suite2p's ``transform_data``
    does: bilinear (``align_corners``) between the integer block centres over the span
    from the first centre to the last, replicated outwards to the edges. So the registered
    frame at p shows the raw frame at p + (yoff, xoff) + u(p): that sum is the displacement
    of the content, the sign of ``gt.displacement`` (measured at the template's pixel p,
    where the truth is indexed by the frame's pixel: they differ by ∇d · d, second order).
    """
    import numpy as np

    height, width = shape
    ny, nx = (int(n) for n in out["nblocks"])
    centre_y = out["yblock"][::nx].mean(axis=1).astype(int)
    centre_x = out["xblock"][:nx].mean(axis=1).astype(int)

    def weights(centres, n_px):
        """(n_px, n_centres) linear weights: suite2p's resize, then the replicate pad."""
        span = int(centres.max() - centres.min())
        grid = np.arange(span) * (len(centres) - 1) / max(span - 1, 1)
        padded = np.concatenate([np.zeros(int(centres.min())), grid,
                                 np.full(n_px - int(centres.max()), len(centres) - 1.0)])  # fmt: skip
        low = np.minimum(np.floor(padded).astype(int), len(centres) - 1)
        high = np.minimum(low + 1, len(centres) - 1)
        frac = padded - low
        w = np.zeros((n_px, len(centres)))
        np.add.at(w, (np.arange(n_px), low), 1 - frac)
        np.add.at(w, (np.arange(n_px), high), frac)
        return w

    wy, wx = weights(centre_y, height), weights(centre_x, width)
    n = len(out["yoff"])
    field = np.empty((n, height, width, 2))
    for axis, (rigid, block) in enumerate([("yoff", "yoff1"), ("xoff", "xoff1")]):
        grid = out[block].reshape(n, ny, nx).astype(float)
        field[..., axis] = np.einsum("yi,tij,xj->tyx", wy, grid, wx)
        field[..., axis] += out[rigid].astype(float)[:, None, None]
    return field


def template_aligned(estimate, truth):
    """``estimate`` with the template's own displacement removed, as ``shift_rmse(align=True)``.

    Registration measures motion relative to its template, itself a displaced (and, with
    a non-rigid field, bent) view of the tissue; the per-pixel time mean of the error is
    that template's displacement, which no pipeline can know. Returns
    ``estimate − mean_t(estimate − truth)``, per pixel and axis.
    """
    return estimate - estimate.mean(axis=0) + truth.mean(axis=0).values


def variants(small: bool) -> dict:
    """The full chain, then each effect added alone (breathing vessels on still ones).

    Name → (spec, suite2p's non-rigid block size in px, or 0 for rigid registration).
    """
    from graphs._common import rung_spec
    from minisim import (
        Acquisition,
        BrainMotion,
        DroppedFrames,
        ImageSensor,
        Spec,
        Vasculature,
        VesselDilation,
        VesselLayer,
    )

    base = rung_spec(6, small)
    acq = base.acquisition
    # No datasheet of the Miniscope V4's sensor gives these, so typical CMOS values.
    cmos = ImageSensor(**(acq.image_sensor.model_dump() | CMOS))
    still = Vasculature(enabled=True, layers=[VesselLayer()])
    breathing = Vasculature(
        enabled=True,
        layers=[VesselLayer()],
        dilation=VesselDilation(neurovascular_gain=0.3, vasomotion_amplitude=0.1),
    )

    def with_steps(*extra, acquisition=acq, steps=base.steps):
        return Spec(acquisition=acquisition, seed=base.seed, steps=[*steps, *extra])

    # The chain's own motion, bent: NONRIGID on top of its rigid path.
    bent = [
        BrainMotion(**(step.model_dump() | NONRIGID)) if isinstance(step, BrainMotion) else step
        for step in base.steps
    ]
    # A block of about the field's spatial scale: 5 × 5 overlapping blocks, centres 34 px
    # apart, on the 200 px field; 3 × 3 blocks of 32 px on the small variant's 64 px one.
    block_px = 32 if small else 64

    chain = {
        "rung 6": with_steps(),
        "+ real CMOS sensor": with_steps(
            acquisition=Acquisition(**(acq.model_dump() | {"image_sensor": cmos}))
        ),
        "+ dropped frames (5%)": with_steps(DroppedFrames(drop_probability=0.05)),
        "+ still vessels": with_steps(still),
        "+ breathing vessels": with_steps(breathing),
        "+ non-rigid motion, rigid registration": with_steps(steps=bent),
        "+ non-rigid motion, non-rigid registration": (with_steps(steps=bent), block_px),
    }
    # The excitation LED's flicker is the example plugin step: this checkout's copy.
    sys.path.insert(0, str(REPO / "examples" / "plugin_step"))
    try:
        from minisim_flicker import Flicker
    except ImportError:
        print("skipped LED flicker: examples/plugin_step is missing", file=sys.stderr)
    else:
        chain["+ LED flicker (5%, 0.5 Hz)"] = with_steps(Flicker(amplitude=0.05))
    return {name: row if isinstance(row, tuple) else (row, 0) for name, row in chain.items()}


#: suite2p's registration smoothing for one-photon data with ``--one-photon`` (px).
ONE_PHOTON_SMOOTH_SIGMA_PX = 4.0

#: The non-rigid motion of the "non-rigid" rows: 2 µm RMS on top of the chain's 10 µm
#: (99th percentile) rigid path, over 60 µm: the size of the local deformations seen in
#: head-fixed running mice (a few µm, a fifth or less of the whole-field motion), over the
#: scale of a few cell bodies, fine enough that a 200 µm field bends several ways at once.
NONRIGID = dict(nonrigid_um=2.0, nonrigid_scale_um=60.0)

#: The CMOS imperfections of the "real sensor" variant.
CMOS = dict(
    black_level_adu=10.0,
    dark_current_e_per_s=100.0,
    dsnu_e=3.0,
    prnu=0.02,
    hot_pixel_fraction=0.001,
    row_noise_e=3.0,
)


def run_variant(name, spec, block_px: int, python: str, workdir: Path, one_photon: bool) -> dict:
    import numpy as np

    from minisim import simulate
    from minisim.metrics import displacement_rmse
    from minisim.testing import Estimate, score

    folder = workdir / name.strip("+ ").replace(" ", "_").replace("(", "").replace(")", "")
    (folder / "in").mkdir(parents=True, exist_ok=True)
    rec = simulate(spec)
    rec.to_tiff(folder / "in" / "rec.tif", progress=False)
    radius_um = float(np.median(rec.ground_truth.dataset["soma_radius_um"].values))
    diameter_px = 2 * radius_um / spec.acquisition.pixel_size_um
    start = time.perf_counter()
    command = [python, __file__, "--worker", str(folder), "--fps", str(spec.acquisition.fps),
               "--diameter", f"{diameter_px:.2f}", "--block", str(block_px),
               *(["--one-photon"] if one_photon else [])]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"suite2p failed on {name}:\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - start
    out = np.load(folder / "result.npz")
    keep = out["iscell"]
    traces = out["F"][keep] - NEUROPIL_COEFFICIENT * out["Fneu"][keep]
    # suite2p's yoff/xoff are the displacement it measured; the correction is its negation.
    correction = -np.stack([out["yoff"], out["xoff"]], axis=1).astype(float)
    report = score(Estimate(A=out["A"][keep], C=traces, shifts=correction), rec.ground_truth)
    # The displacement field suite2p applied (+ the content's motion, gt.displacement's
    # sign): its rigid shift everywhere, plus the upsampled block offsets when non-rigid.
    truth = rec.ground_truth.displacement
    shape = truth.shape[1:3]
    if block_px > 0:
        field = block_field(out, shape)
    else:
        field = np.broadcast_to(-correction[:, None, None, :], (len(correction), *shape, 2))
    return dict(
        variant=name,
        registration=f"non-rigid, {block_px}×{block_px} px blocks" if block_px else "rigid",
        one_photon_settings=one_photon,
        motion_error_px=report.shift_rmse,
        # Against the whole field, after removing the template's own displacement.
        displacement_rmse_px=displacement_rmse(template_aligned(field, truth), truth),
        # The same without that removal: the template's offset and bend count as error.
        displacement_rmse_raw_px=displacement_rmse(field, truth),
        recall=report.recall,
        precision=report.precision,
        trace_r=report.trace_corr,
        n_found=report.n_matched,
        n_detectable=report.n_true,
        n_rois=int(keep.sum()),
        suite2p_s=round(seconds, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=os.environ.get("SUITE2P_PYTHON"),
                        help="the interpreter of an environment with suite2p installed")  # fmt: skip
    parser.add_argument("--small", action="store_true", help="the ladder's small variant")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-results" / "pipeline_costs")
    parser.add_argument("--only", help="run the variants whose name contains this")
    parser.add_argument("--one-photon", action="store_true",
                        help="suite2p's registration smoothing for one-photon data (4 px)")  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--fps", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--diameter", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--block", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.fps, args.diameter, args.block, args.one_photon)
        return
    if not args.python:
        parser.error("give --python (or SUITE2P_PYTHON): an interpreter with suite2p installed")
    sys.path.insert(0, str(REPO))
    import warnings

    from minisim import SpecWarning

    warnings.simplefilter("ignore", SpecWarning)
    if args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"{args.workdir} is not empty: give a new --workdir (nothing is overwritten)")
    rows = []
    print("| variant | motion error (px) | displacement error (px) | recall | precision | "
          "trace r | found / detectable |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for name, (spec, block_px) in variants(args.small).items():
        if args.only and args.only not in name:
            continue
        row = run_variant(name, spec, block_px, args.python, args.workdir, args.one_photon)
        rows.append(row)
        print(f"| {name} | {row['motion_error_px']:.2f} | {row['displacement_rmse_px']:.2f} | "
              f"{row['recall']:.2f} | {row['precision']:.2f} | {row['trace_r']:.2f} | "
              f"{row['n_found']} / {row['n_detectable']} |", flush=True)  # fmt: skip
    out = args.workdir / "pipeline_costs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
