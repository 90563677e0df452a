"""Share of the per-frame cost taken by each step of the full chain, brain motion first.

Usage::

    python benchmarks/bench_motion_share.py                 # 512x512 px, 30 s (600 frames)
    python benchmarks/bench_motion_share.py --n 200 --duration 20

On the ladder's acquisition (8x, 8 µm pitch, 20 fps, seed 1) with the full rung-6 chain
(default ``Sensor()``, Poisson), fresh subprocesses measure, side by side in one run:

* ``full``: ``simulate(spec)`` then ``rec.observed.max().compute()`` (timed);
* ``no-motion``: the same chain without ``BrainMotion()`` (timed). Wall-time difference
  over ``full`` is the whole cost of motion, including the margin-padded canvas it makes
  composite and neuropil render;
* ``full-gaussian``: the full chain with ``Sensor(shot_noise="gaussian")`` (timed), to
  show what the Poisson draw costs;
* all three again under ``dask.diagnostics.Profiler`` with ``optimize_graph=False`` (so
  blockwise fusion does not merge a step's tasks into the next layer's): every task's
  duration is summed by the name prefix of its graph layer (layers are named after steps:
  ``brain_motion-…``, ``composite-…``, ``neuropil-…``, ``sensor-…``; reductions are
  ``chunk_max``/``max``), giving each step's share of total task time (threads, so task
  time includes waiting for the GIL and for the other thread's CPU on a busy machine).

Results go to ``bench-results/motion_share.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    MIB,
    RESULTS_DIR,
    add_quiet_args,
    cpu_s,
    emit,
    environment,
    fmt_load,
    make_spec,
    maxrss_bytes,
    run_watched,
    wait_for_quiet,
    write_json,
)

DEFAULT_OUTPUT = RESULTS_DIR / "motion_share.json"
#: variant -> (steps dropped, Sensor shot_noise)
VARIANTS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "full": ((), None),
    "no-motion": (("BrainMotion",), None),
    "full-gaussian": ((), "gaussian"),
}


# --------------------------------------------------------------------------- worker side


def _layer_prefix(key) -> str:
    name = key[0] if isinstance(key, tuple) else str(key)
    return str(name).split("-", 1)[0]


def run_worker(n_px: int, duration_s: float, variant: str, profile: bool) -> dict:
    import minisim

    drop, shot_noise = VARIANTS[variant]
    spec = make_spec(n_px, duration_s, "rung6", drop=drop, shot_noise=shot_noise)
    t0 = time.perf_counter()
    rec = minisim.simulate(spec)
    build_s = time.perf_counter() - t0
    obs = rec.observed
    out = {
        "variant": variant,
        "profiled": profile,
        "steps": [type(s).__name__ for s in spec.steps],
        "shape": [int(s) for s in obs.shape],
        "n_cells": int(rec.ground_truth.n_units),
        "frames_per_chunk": int(max(obs.data.chunks[0])),
        "n_frame_chunks": len(obs.data.chunks[0]),
        "layers": sorted({_layer_prefix(k) for k in obs.data.__dask_graph__().layers}),
        "build_s": build_s,
    }
    c0, t0 = cpu_s(), time.perf_counter()
    if profile:
        from dask.diagnostics import Profiler

        # No graph optimization: blockwise fusion would merge a step's tasks into the
        # next layer's (a fused task is named after its last layer), hiding the split.
        with Profiler() as prof:
            obs.max().compute(optimize_graph=False)
        per_layer: dict[str, float] = {}
        n_tasks: dict[str, int] = {}
        for task in prof.results:
            p = _layer_prefix(task.key)
            per_layer[p] = per_layer.get(p, 0.0) + (task.end_time - task.start_time)
            n_tasks[p] = n_tasks.get(p, 0) + 1
        out["task_s_by_layer"] = dict(sorted(per_layer.items(), key=lambda kv: -kv[1]))
        out["tasks_by_layer"] = n_tasks
        out["task_s_total"] = sum(per_layer.values())
    else:
        obs.max().compute()
    out["compute_s"] = time.perf_counter() - t0
    out["compute_cpu_s"] = cpu_s() - c0
    out["peak_rss_bytes"] = maxrss_bytes()
    return out


# --------------------------------------------------------------------------- driver side


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512, help="frame side, px")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds recorded")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    add_quiet_args(parser)
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        emit(run_worker(args.n, args.duration, args.worker, args.profile))
        return 0

    results = []
    for profile in (False, True):
        for variant in VARIANTS:
            waited = wait_for_quiet(args.quiet_load, args.quiet_wait)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant]
            cmd += ["--n", str(args.n), "--duration", repr(args.duration)]
            if profile:
                cmd.append("--profile")
            label = f"{variant}{' (profiled)' if profile else ''}"
            print(f"measuring {label} (waited {waited:.0f} s for quiet) ...", flush=True)
            r = run_watched(cmd)
            if r["status"] != "ok":
                print(f"  {r['status']}: {r['detail']}")
                return 1
            print(
                f"  max() {r['compute_s']:.2f} s, load {fmt_load(r['load_before'])}",
                flush=True,
            )
            results.append(r)

    by = {(r["variant"], r["profiled"]): r for r in results}
    full, nomo = by[("full", False)], by[("no-motion", False)]
    n_frames = full["shape"][0]
    motion_wall_share = (full["compute_s"] - nomo["compute_s"]) / full["compute_s"]
    motion_cpu_share = (full["compute_cpu_s"] - nomo["compute_cpu_s"]) / full["compute_cpu_s"]

    print()
    print(f"{'variant':<22} {'max() s':>8} {'CPU s':>7} {'ms/frame':>9} {'peak MiB':>9} load")
    for r in results:
        label = f"{r['variant']}{' (profiled)' if r['profiled'] else ''}"
        print(
            f"{label:<22} {r['compute_s']:>8.2f} {r['compute_cpu_s']:>7.1f} "
            f"{1e3 * r['compute_s'] / n_frames:>9.2f} {r['peak_rss_bytes'] / MIB:>9.0f} "
            f"{fmt_load(r['load_before'])}"
        )
    print(
        f"\nbrain motion, by difference (full − no-motion) / full: wall {motion_wall_share:.1%}, "
        f"CPU {motion_cpu_share:.1%}"
    )
    shares = {}
    for variant in VARIANTS:
        prof = by[(variant, True)]
        total = prof["task_s_total"]
        shares[variant] = {k: v / total for k, v in prof["task_s_by_layer"].items()}
        print(f"\ntask time by layer, {variant} (total {total:.1f} task-s, {n_frames} frames):")
        for k, v in prof["task_s_by_layer"].items():
            print(
                f"  {k:<22} {v:>8.2f} s {v / total:>7.1%} {1e3 * v / n_frames:>8.2f} ms/frame "
                f"({prof['tasks_by_layer'][k]} tasks)"
            )

    write_json(
        args.output,
        {
            "benchmark": "motion_share",
            "spec": (
                f"ladder acquisition at {args.n}x{args.n} px, {args.duration:g} s, 20 fps; full "
                "rung-6 chain with Sensor() (Poisson); no-motion: same without BrainMotion()"
            ),
            "measurement": {
                "compute_s": "rec.observed.max().compute() on the threaded scheduler",
                "task_s_by_layer": "dask.diagnostics.Profiler task durations summed by layer "
                "name prefix (threads: includes GIL waits)",
                "load": "1-minute load average before each worker (2-core machine)",
            },
            "environment": environment(),
            "motion_share_by_difference": {"wall": motion_wall_share, "cpu": motion_cpu_share},
            "task_share_by_layer": shares,
            "results": results,
        },
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
