"""What each realism effect costs a real pipeline: suite2p on the ladder's full chain.

Usage::

    python benchmarks/pipeline_costs.py --python /path/to/suite2p-env/bin/python [--small]

suite2p runs in its own environment (it pins torch and its own numpy), so this script
drives it through a subprocess: ``--python`` is that environment's interpreter, in which
``pip install suite2p`` is enough (suite2p 1.1 was measured). The same file is the worker
(``--worker FOLDER``), importing only numpy and suite2p there.

For every variant of the ladder's full chain (rung 6: 200 × 200 µm at 1 µm/px, 20 s at
20 fps, seed 1) the recording is exported with ``Recording.to_tiff``, suite2p registers
it (rigid), detects ROIs and extracts their fluorescence, and ``minisim.testing.score``
scores what it found against the recording's own ground truth:

* **motion error**: ``shift_rmse`` of suite2p's per-frame correction (the negated
  ``yoff``/``xoff``) against ``gt.shifts``, px, after removing the template offset;
* **recall**: ``hungarian_match`` (IoU ≥ 0.5) of suite2p's ROIs (those it classifies as
  cells) against the detectable in-field cells; the denominator is printed;
* **trace r**: median ``trace_pearson`` of the matched pairs' F − 0.7·Fneu against C.

The variants: the CMOS imperfections of :data:`CMOS` (typical values: the Miniscope V4's
sensor has no published datasheet, so ``ImageSensor`` defaults them to zero), 5% dropped
frames, one still vessel layer, the same layer breathing (to compare with the still one),
and LED flicker when the example plugin step ``minisim_flicker`` is installed
(``examples/plugin_step``, imported from this checkout).

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


def worker(folder: str, fps: float, diameter_px: float) -> None:
    """In suite2p's environment: run it on ``folder/in/*.tif``, save ``folder/result.npz``."""
    import numpy as np
    import suite2p

    settings = suite2p.default_settings()
    settings.update(torch_device="cpu", fs=fps, tau=1.0, diameter=[diameter_px, diameter_px])
    settings["registration"]["nonrigid"] = False  # the simulated motion is rigid
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
    np.savez(
        Path(folder, "result.npz"),
        A=footprints,
        F=np.load(plane / "F.npy"),
        Fneu=np.load(plane / "Fneu.npy"),
        iscell=np.load(plane / "iscell.npy")[:, 0] > 0,
        yoff=reg["yoff"],
        xoff=reg["xoff"],
    )


def variants(small: bool) -> dict:
    """The full chain, then each effect added alone (breathing vessels on still ones)."""
    from graphs._common import rung_spec
    from minisim import (
        Acquisition,
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

    def with_steps(*extra, acquisition=acq):
        return Spec(acquisition=acquisition, seed=base.seed, steps=[*base.steps, *extra])

    chain = {
        "rung 6": with_steps(),
        "+ real CMOS sensor": with_steps(
            acquisition=Acquisition(**(acq.model_dump() | {"image_sensor": cmos}))
        ),
        "+ dropped frames (5%)": with_steps(DroppedFrames(drop_probability=0.05)),
        "+ still vessels": with_steps(still),
        "+ breathing vessels": with_steps(breathing),
    }
    # The excitation LED's flicker is the example plugin step: this checkout's copy.
    sys.path.insert(0, str(REPO / "examples" / "plugin_step"))
    try:
        from minisim_flicker import Flicker
    except ImportError:
        print("skipped LED flicker: examples/plugin_step is missing", file=sys.stderr)
    else:
        chain["+ LED flicker (5%, 0.5 Hz)"] = with_steps(Flicker(amplitude=0.05))
    return chain


#: The CMOS imperfections of the "real sensor" variant.
CMOS = dict(
    black_level_adu=10.0,
    dark_current_e_per_s=100.0,
    dsnu_e=3.0,
    prnu=0.02,
    hot_pixel_fraction=0.001,
    row_noise_e=3.0,
)


def run_variant(name, spec, python: str, workdir: Path) -> dict:
    import numpy as np

    from minisim import simulate
    from minisim.testing import Estimate, score

    folder = workdir / name.strip("+ ").replace(" ", "_").replace("(", "").replace(")", "")
    (folder / "in").mkdir(parents=True, exist_ok=True)
    rec = simulate(spec)
    rec.to_tiff(folder / "in" / "rec.tif", progress=False)
    radius_um = float(np.median(rec.ground_truth.dataset["soma_radius_um"].values))
    diameter_px = 2 * radius_um / spec.acquisition.pixel_size_um
    start = time.perf_counter()
    command = [python, __file__, "--worker", str(folder), "--fps", str(spec.acquisition.fps),
               "--diameter", f"{diameter_px:.2f}"]  # fmt: skip
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
    return dict(
        variant=name,
        motion_error_px=report.shift_rmse,
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--fps", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--diameter", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.fps, args.diameter)
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
    print("| variant | motion error (px) | recall | precision | trace r | found / detectable |")
    print("|---|---|---|---|---|---|")
    for name, spec in variants(args.small).items():
        if args.only and args.only not in name:
            continue
        row = run_variant(name, spec, args.python, args.workdir)
        rows.append(row)
        print(f"| {name} | {row['motion_error_px']:.2f} | {row['recall']:.2f} | "
              f"{row['precision']:.2f} | {row['trace_r']:.2f} | "
              f"{row['n_found']} / {row['n_detectable']} |", flush=True)  # fmt: skip
    out = args.workdir / "pipeline_costs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
