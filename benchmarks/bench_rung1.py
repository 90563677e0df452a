"""Benchmark rung 1 of the examples ladder: graph build, full reduction, peak memory.

Usage::

    python benchmarks/bench_rung1.py            # 20 s and 7200 s (2 hours)
    python benchmarks/bench_rung1.py --quick    # 20 s and 600 s

For each duration a fresh Python subprocess imports minisim, builds the rung-1 recording
with ``simulate(spec)`` (timed), then computes ``rec.observed.max()`` on the default
threaded scheduler (timed), and reports its peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss``) together with the resident memory right after the
imports, so the increment due to the simulation is visible. Throughput is given in frames/s
and in MB/s (10⁶ bytes) of float32 movie. The table is printed and the numbers are written
as JSON to ``bench-results/rung1.json`` at the repository root.

The 2-hour recording must compute in under 1 GiB peak resident memory; the script prints
PASS/FAIL against that target and exits with status 1 on FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "bench-results" / "rung1.json"
FULL_DURATIONS = (20.0, 7200.0)
QUICK_DURATIONS = (20.0, 600.0)
#: Peak resident memory allowed for the 2-hour recording.
MEMORY_TARGET_BYTES = 2**30
TARGET_DURATION_S = 7200.0
MIB = 2**20


# --------------------------------------------------------------------------- worker side


def _maxrss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


def _current_rss_bytes() -> int | None:
    """Current resident memory (Linux only; None elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def run_worker(duration_s: float) -> dict:
    """One measurement, meant to run in a fresh interpreter."""
    t0 = time.perf_counter()
    import dask
    import numpy as np

    from minisim import (
        Acquisition,
        CellActivity,
        Composite,
        ImageSensor,
        Optics,
        PlaceNeurons,
        Spec,
        simulate,
    )

    import_s = time.perf_counter() - t0
    baseline_rss = _current_rss_bytes()
    baseline_maxrss = _maxrss_bytes()

    acq = Acquisition(
        fps=20.0,
        duration_s=duration_s,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=200, n_px_width=200, pixel_pitch_um=8.0),
    )
    spec = Spec(acquisition=acq, seed=1, steps=[PlaceNeurons(), CellActivity(), Composite()])

    t0 = time.perf_counter()
    rec = simulate(spec)
    build_s = time.perf_counter() - t0
    after_build_rss = _current_rss_bytes()

    observed = rec.observed
    n_frames, height, width = (int(s) for s in observed.shape)
    frame_chunks = observed.data.chunks[0]
    n_tasks = len(observed.data.__dask_graph__())

    t0 = time.perf_counter()
    peak_value = observed.max().compute()
    compute_s = time.perf_counter() - t0

    peak_rss = _maxrss_bytes()
    movie_bytes = n_frames * height * width * np.dtype(np.float32).itemsize
    return {
        "duration_s": duration_s,
        "n_frames": n_frames,
        "frame_shape": [height, width],
        "n_cells": int(rec.dataset.sizes["cell"]),
        "observed_dtype": str(observed.dtype),
        "n_frame_chunks": len(frame_chunks),
        "frames_per_chunk": int(max(frame_chunks)),
        "n_graph_tasks": n_tasks,
        "scheduler": str(dask.config.get("scheduler", "threads (default)")),
        "max_value": float(peak_value),
        "import_s": import_s,
        "build_s": build_s,
        "compute_s": compute_s,
        "frames_per_s": n_frames / compute_s,
        "movie_float32_bytes": movie_bytes,
        "mb_per_s": movie_bytes / 1e6 / compute_s,
        "baseline_rss_bytes": baseline_rss,
        "baseline_maxrss_bytes": baseline_maxrss,
        "after_build_rss_bytes": after_build_rss,
        "peak_rss_bytes": peak_rss,
        "peak_increment_bytes": peak_rss - (baseline_rss or baseline_maxrss),
    }


# --------------------------------------------------------------------------- driver side


def measure(duration_s: float, timeout_s: float | None) -> dict:
    """Run one measurement in a fresh subprocess and return its numbers."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", repr(duration_s)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
    wall_s = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise RuntimeError(f"worker for duration {duration_s:g} s failed ({proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["subprocess_wall_s"] = wall_s
    return result


def _environment() -> dict:
    import dask
    import numpy

    try:
        import minisim

        version = minisim.__version__
    except Exception:  # reporting only
        version = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "dask": dask.__version__,
        "minisim": version,
        "git_commit": commit,
    }


def _fmt_mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.0f}"


def print_table(results: list[dict]) -> None:
    header = (
        f"{'duration':>9} {'frames':>7} {'chunks':>6} {'build s':>8} {'max() s':>8} "
        f"{'frames/s':>9} {'MB/s':>7} {'base MiB':>8} {'peak MiB':>8} {'+MiB':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['duration_s']:>8g}s {r['n_frames']:>7d} {r['n_frame_chunks']:>6d} "
            f"{r['build_s']:>8.3f} {r['compute_s']:>8.2f} {r['frames_per_s']:>9.0f} "
            f"{r['mb_per_s']:>7.0f} {_fmt_mib(r['baseline_rss_bytes']):>8} "
            f"{_fmt_mib(r['peak_rss_bytes']):>8} {_fmt_mib(r['peak_increment_bytes']):>6}"
        )


def verdict(results: list[dict]) -> tuple[str, str]:
    """PASS/FAIL of the 2-hour run against the memory target (or SKIP if not run)."""
    target = [r for r in results if r["duration_s"] == TARGET_DURATION_S]
    if not target:
        return "SKIP", f"no {TARGET_DURATION_S:g} s run (--quick)"
    peak = target[0]["peak_rss_bytes"]
    status = "PASS" if peak < MEMORY_TARGET_BYTES else "FAIL"
    return status, (
        f"{TARGET_DURATION_S:g} s recording peak RSS {peak / MIB:.0f} MiB "
        f"vs target < {MEMORY_TARGET_BYTES / MIB:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="run 20 s and 600 s only")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output path")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds allowed per measurement"
    )
    parser.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(run_worker(args.worker)))
        return 0

    durations = QUICK_DURATIONS if args.quick else FULL_DURATIONS
    results = []
    for duration in durations:
        print(f"measuring {duration:g} s ...", flush=True)
        results.append(measure(duration, args.timeout))
    print()
    print_table(results)
    status, detail = verdict(results)
    print()
    print(f"memory target: {status}: {detail}")

    report = {
        "benchmark": "rung1",
        "spec": (
            "Acquisition(fps=20, duration_s=D, Optics(magnification=8), "
            "ImageSensor(200x200 px, pitch 8 um)); seed=1; "
            "steps=[PlaceNeurons(), CellActivity(), Composite()]"
        ),
        "measurement": "rec.observed.max().compute() on the default threaded scheduler",
        "units": {"bytes": "B", "MB": "1e6 B", "MiB": "2**20 B", "times": "s"},
        "quick": args.quick,
        "memory_target_bytes": MEMORY_TARGET_BYTES,
        "memory_target": {"status": status, "detail": detail},
        "environment": _environment(),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 1 if status == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
