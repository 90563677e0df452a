"""Stream a 10-minute full-chain recording straight into a video file: time and memory.

Usage::

    python benchmarks/bench_video.py                    # 200x200 px, 600 s (12,000 frames)
    python benchmarks/bench_video.py --duration 60

A fresh subprocess runs ``simulate_video(spec, "x.avi", progress=False)`` (the default codec:
uncompressed 8-bit gray since the exporters landed; FFV1 before) on the ladder's acquisition (8x, 8 µm pitch, 20 fps, seed 1) with the full rung-6
chain and default ``Sensor()``, in a temporary directory (the video is deleted after).
Reported: wall time, frames/s, peak resident memory (``ru_maxrss``) against the < 1 GiB
target, the file size, and the 1-minute load average. Results go to
``bench-results/video.json``; exit status 1 if the memory target is missed.
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

DEFAULT_OUTPUT = RESULTS_DIR / "video.json"
MEMORY_TARGET_BYTES = GIB


def run_worker(n_px: int, duration_s: float, path: str) -> dict:
    t0 = time.perf_counter()
    import minisim

    import_s = time.perf_counter() - t0
    baseline = current_rss_bytes()
    spec = make_spec(n_px, duration_s, "rung6")
    c0, t0 = cpu_s(), time.perf_counter()
    minisim.simulate_video(spec, path, progress=False)
    wall = time.perf_counter() - t0
    cpu = cpu_s() - c0
    n_frames = round(duration_s * spec.acquisition.fps)
    rec = minisim.simulate(spec)  # cheap: for the chunking only
    return {
        "import_s": import_s,
        "baseline_rss_bytes": baseline,
        "n_frames": n_frames,
        "frames_per_chunk": int(max(rec.observed.data.chunks[0])),
        "n_frame_chunks": len(rec.observed.data.chunks[0]),
        "simulate_video_s": wall,
        "simulate_video_cpu_s": cpu,
        "frames_per_s": n_frames / wall,
        "peak_rss_bytes": maxrss_bytes(),
        "file_bytes": os.path.getsize(path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="frame side, px")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds recorded")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    add_quiet_args(parser)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        emit(run_worker(args.n, args.duration, args.worker))
        return 0

    with tempfile.TemporaryDirectory(prefix="minisim-bench-video-") as tmp:
        path = str(Path(tmp) / "x.avi")
        waited = wait_for_quiet(args.quiet_load, args.quiet_wait)
        print(f"measuring {args.n}x{args.n} px, {args.duration:g} s (waited {waited:.0f} s)")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", path]
        cmd += ["--n", str(args.n), "--duration", repr(args.duration)]
        r = run_watched(cmd, mem_limit_bytes=8 * GIB)
    if r["status"] != "ok":
        print(f"{r['status']}: {r['detail']}")
        return 1
    peak = r["peak_rss_bytes"]
    status = "PASS" if peak < MEMORY_TARGET_BYTES else "FAIL"
    print(
        f"\n{'frames':>7} {'chunk':>6} {'wall s':>8} {'CPU s':>7} {'frames/s':>9} "
        f"{'base MiB':>8} {'peak MiB':>9} {'file MiB':>9} {'load':>5}"
    )
    print(
        f"{r['n_frames']:>7} {r['frames_per_chunk']:>6} {r['simulate_video_s']:>8.1f} "
        f"{r['simulate_video_cpu_s']:>7.1f} {r['frames_per_s']:>9.0f} "
        f"{(r['baseline_rss_bytes'] or 0) / MIB:>8.0f} {peak / MIB:>9.0f} "
        f"{r['file_bytes'] / MIB:>9.1f} {fmt_load(r['load_before']):>5}"
    )
    print(f"\nmemory target (< {MEMORY_TARGET_BYTES / MIB:.0f} MiB): {status}")
    write_json(
        args.output,
        {
            "benchmark": "video",
            "spec": (
                f"ladder acquisition at {args.n}x{args.n} px, {args.duration:g} s, 20 fps; "
                "full rung-6 chain with Sensor() (Poisson)"
            ),
            "measurement": "simulate_video(spec, 'x.avi', progress=False), default codec (rawvideo)",
            "memory_target_bytes": MEMORY_TARGET_BYTES,
            "memory_target_status": status,
            "environment": environment(),
            "result": r,
        },
    )
    print(f"wrote {args.output}")
    return 1 if status == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
