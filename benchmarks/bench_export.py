"""Export throughput and peak memory: a full-chain 512 px recording to NWB and to TIFF.

Usage::

    python benchmarks/bench_export.py                       # 512x512 px, 600 s (12,000 frames)
    python benchmarks/bench_export.py --duration 180        # 3 minutes
    python benchmarks/bench_export.py --targets tiff --sources store

Each measurement runs in a fresh subprocess and reports wall time, frames/s and peak
resident memory (``ru_maxrss``):

* source ``simulate``: ``simulate(spec).to_nwb(path)`` / ``.to_tiff(path)``, the frames
  computed while they are written (the full rung-6 chain with ``Sensor()``);
* source ``store``: the same recording first written with ``to_zarr`` (not timed), then
  ``open_recording(store).to_nwb(path)`` / ``.to_tiff(path)``: the cost of the export alone.

Spec: the ladder's acquisition (8x, 8 µm pitch, 20 fps, seed 1) at ``--n`` px. Files go to
a temporary directory and are deleted after; results to ``bench-results/export.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    GIB,
    MIB,
    RESULTS_DIR,
    add_quiet_args,
    cpu_s,
    current_rss_bytes,
    emit,
    environment,
    fmt_load,
    make_spec,
    maxrss_bytes,
    run_watched,
    wait_for_quiet,
    write_json,
)

DEFAULT_OUTPUT = RESULTS_DIR / "export.json"


def run_worker(n_px: int, duration_s: float, target: str, source: str, path: str) -> dict:
    import warnings

    import minisim

    warnings.simplefilter("ignore", minisim.SpecWarning)
    spec = make_spec(n_px, duration_s, "rung6")
    store = str(Path(path).parent / "rec.zarr")
    if target == "store":
        minisim.simulate(spec).to_zarr(store)
        return {"wrote": store}
    baseline = current_rss_bytes()
    c0, t0 = cpu_s(), time.perf_counter()
    rec = minisim.simulate(spec) if source == "simulate" else minisim.open_recording(store)
    if target == "nwb":
        rec.to_nwb(path, progress=False)
    else:
        rec.to_tiff(path, progress=False)
    wall = time.perf_counter() - t0
    n_frames = rec.dataset.sizes["frame"]
    return {
        "target": target,
        "source": source,
        "n_frames": n_frames,
        "frames_per_chunk": int(max(rec.observed.data.chunks[0])),
        "baseline_rss_bytes": baseline,
        "wall_s": wall,
        "cpu_s": cpu_s() - c0,
        "frames_per_s": n_frames / wall,
        "peak_rss_bytes": maxrss_bytes(),
        "file_bytes": os.path.getsize(path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512, help="frame side, px")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds recorded")
    parser.add_argument("--targets", default="nwb,tiff")
    parser.add_argument("--sources", default="simulate,store")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    add_quiet_args(parser)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        target, source, path = args.worker
        emit(run_worker(args.n, args.duration, target, source, path))
        return 0

    script = str(Path(__file__).resolve())
    # Measure the minisim of this checkout (a worktree too), not whichever is installed.
    env = {**os.environ, "PYTHONPATH": str(Path(script).parents[1])}
    common = ["--n", str(args.n), "--duration", repr(args.duration)]
    results = []
    with tempfile.TemporaryDirectory(prefix="minisim-bench-export-") as tmp:
        sources = args.sources.split(",")
        if "store" in sources:
            print(f"writing the store ({args.n}x{args.n} px, {args.duration:g} s) ...")
            cmd = [sys.executable, script, "--worker", "store", "-", str(Path(tmp) / "x")]
            r = run_watched(cmd + common, mem_limit_bytes=8 * GIB, env=env)
            if r["status"] != "ok":
                print(f"store: {r['status']}: {r['detail']}")
                return 1
        for source in sources:
            for target in args.targets.split(","):
                path = str(Path(tmp) / f"x.{'nwb' if target == 'nwb' else 'tif'}")
                waited = wait_for_quiet(args.quiet_load, args.quiet_wait)
                print(f"measuring {target} from {source} (waited {waited:.0f} s)")
                cmd = [sys.executable, script, "--worker", target, source, path] + common
                r = run_watched(cmd, mem_limit_bytes=8 * GIB, env=env)
                if r["status"] != "ok":
                    print(f"{target}/{source}: {r['status']}: {r['detail']}")
                    return 1
                results.append(r)
                Path(path).unlink(missing_ok=True)
    print(f"\n{'target':>6} {'source':>8} {'frames':>7} {'wall s':>8} {'CPU s':>7} "
          f"{'frames/s':>9} {'peak MiB':>9} {'file MiB':>9} {'load':>5}")  # fmt: skip
    for r in results:
        print(
            f"{r['target']:>6} {r['source']:>8} {r['n_frames']:>7} {r['wall_s']:>8.1f} "
            f"{r['cpu_s']:>7.1f} {r['frames_per_s']:>9.1f} {r['peak_rss_bytes'] / MIB:>9.0f} "
            f"{r['file_bytes'] / MIB:>9.1f} {fmt_load(r['load_before']):>5}"
        )
    write_json(
        args.output,
        {
            "benchmark": "export",
            "spec": (
                f"ladder acquisition at {args.n}x{args.n} px, {args.duration:g} s, 20 fps; "
                "full rung-6 chain with Sensor() (Poisson)"
            ),
            "measurement": "rec.to_nwb(path) (gzip 1) and rec.to_tiff(path), fresh process each",
            "environment": environment(),
            "results": results,
        },
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
