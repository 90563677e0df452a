"""The ``minisim`` command line."""

from __future__ import annotations

import argparse
import sys
import time

EXAMPLES = """examples:
  minisim demo                       rung-1 recording (200×200 px, 20 s) on the local default
  minisim demo --duration 600        a 10-minute recording, computed chunk by chunk
  minisim demo --scheduler processes
"""


def demo_spec(duration_s: float, px: int, seed: int):
    """The fullest chain available, on the examples ladder's acquisition (1 µm/px)."""
    from . import Acquisition, CellActivity, Composite, ImageSensor, Optics, PlaceNeurons, Spec

    acq = Acquisition(
        fps=20.0,
        duration_s=duration_s,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=px, n_px_width=px, pixel_pitch_um=8.0),
    )
    return Spec(acquisition=acq, seed=seed, steps=[PlaceNeurons(), CellActivity(), Composite()])


def run_demo(args) -> int:
    import dask
    import dask.array as da
    from dask.diagnostics import ProgressBar

    from . import simulate

    spec = demo_spec(args.duration, args.px, args.seed)
    start = time.perf_counter()
    rec = simulate(spec, chunks=args.chunks)
    built = time.perf_counter() - start
    obs = rec.observed.data
    n_frames, height, width = obs.shape
    print(
        f"minisim demo: {rec.ground_truth.n_units} cells, {n_frames} frames of "
        f"{height}×{width} px ({obs.nbytes / 2**30:.2f} GiB as {obs.dtype}), "
        f"{len(obs.chunks[0])} chunks; graph built in {built:.2f} s"
    )
    start = time.perf_counter()
    with dask.config.set(scheduler=args.scheduler), ProgressBar(out=sys.stderr):
        peak, mean, spikes = da.compute(obs.max(), obs.mean(), rec.ground_truth.S.data.sum())
    elapsed = time.perf_counter() - start
    print(
        f"computed in {elapsed:.1f} s ({n_frames / elapsed:.0f} frames/s): "
        f"mean intensity {float(mean):.3f}, peak {float(peak):.1f}, {int(spikes)} spikes"
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="minisim",
        description="Simulate one-photon miniscope recordings with exact ground truth.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="simulate the full chain available and print a summary",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    demo.add_argument("--px", type=int, default=200, help="field of view in pixels (default 200)")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--chunks", type=int, default=None, help="frames per chunk (default auto)")
    demo.add_argument(
        "--scheduler",
        choices=["threads", "processes", "sync"],
        default="threads",
        help="dask scheduler (default threads)",
    )
    args = parser.parse_args(argv)
    try:
        return run_demo(args)
    except ValueError as err:  # bad input: say what, exit 2
        print(f"minisim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
