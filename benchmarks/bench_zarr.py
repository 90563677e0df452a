"""Write a long full-chain 512x512 recording to Zarr: threads vs a 1- and 2-worker cluster.

Usage::

    python benchmarks/bench_zarr.py                      # 1800 s = 36,000 frames, all modes
    python benchmarks/bench_zarr.py --duration 300       # 5 minutes, extrapolated to 30
    python benchmarks/bench_zarr.py --modes threads --duration 1800

On the ladder's acquisition (8x, 8 µm pitch, 20 fps, seed 1) at 512x512 px with the full
rung-6 chain (default ``Sensor()``, Poisson), a fresh subprocess per mode runs
``simulate(spec).to_zarr(path)`` into a temporary directory (deleted right after):

* ``threads``: the default threaded scheduler (2 threads on this machine);
* ``lc1``: ``Client(LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
  preload=["minisim"]))``;
* ``lc2``: the same with ``n_workers=2``.

The workers import minisim when they start (``preload``), as they do when a script that
imports minisim at its top starts a ``LocalCluster`` (spawned workers import the script's
imports) or with ``dask worker --preload minisim``; ``--no-preload`` leaves the import
(about 1.4 s) to each worker's first task, inside the timed write.

Reported per mode: wall time of ``simulate + to_zarr`` (cluster start-up timed apart),
frames/s, the store's size on disk, peak resident memory: ``ru_maxrss`` of the process
that calls ``to_zarr``, each cluster worker's own ``ru_maxrss`` (via ``Client.run``), and the
peak summed resident memory of the whole process tree sampled every 0.2 s by the driver.
The threaded peak is checked against < 2 GiB, the 2-worker speed-up over 1 worker against
≥ 1.8x (the issue's target; ``--repeats`` alternates the modes and reports
min and median). When ``--duration`` is shorter than 1800 s, times are also extrapolated linearly in
the number of frames to the 30-minute recording (and said so).

The eager peer's need for the 30-minute recording is estimated from its peak RSS at two
durations of the same chain at 512 px, read from ``bench-results/vs_peer.json`` (run
``bench_vs_peer.py`` first), assuming linear growth with duration.
Results go to ``bench-results/zarr.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

DEFAULT_OUTPUT = RESULTS_DIR / "zarr.json"
VS_PEER = RESULTS_DIR / "vs_peer.json"
TARGET_DURATION_S = 1800.0
MEMORY_TARGET_BYTES = 2 * GIB
SPEEDUP_TARGET = 1.8
MODES = {"threads": 0, "lc1": 1, "lc2": 2}


def _worker_maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _du_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def run_worker(mode: str, n_px: int, duration_s: float, store: str, preload: bool = True) -> dict:
    t0 = time.perf_counter()
    import minisim

    out: dict = {"mode": mode, "import_s": time.perf_counter() - t0}
    out["baseline_rss_bytes"] = current_rss_bytes()
    n_workers = MODES[mode]
    client = cluster = None
    if n_workers:
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        options = {"preload": ["minisim"]} if preload else {}
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, dashboard_address=None, **options
        )
        client = Client(cluster)
        out["cluster_start_s"] = time.perf_counter() - t0
        workers_cpu0 = sum(client.run(_worker_cpu_s).values())
    spec = make_spec(n_px, duration_s, "rung6")
    c0, t0 = cpu_s(), time.perf_counter()
    rec = minisim.simulate(spec)
    out["build_s"] = time.perf_counter() - t0
    obs = rec.observed
    out["n_frames"] = int(obs.shape[0])
    out["frames_per_chunk"] = int(max(obs.data.chunks[0]))
    out["n_frame_chunks"] = len(obs.data.chunks[0])
    out["n_cells"] = int(rec.ground_truth.n_units)
    t1 = time.perf_counter()
    rec.to_zarr(store)
    out["to_zarr_s"] = time.perf_counter() - t1
    out["wall_s"] = time.perf_counter() - t0  # simulate + to_zarr
    out["cpu_s_this_process"] = cpu_s() - c0
    out["frames_per_s"] = out["n_frames"] / out["wall_s"]
    out["peak_rss_bytes"] = maxrss_bytes()
    if client is not None:
        out["worker_peak_rss_bytes"] = sorted(client.run(_worker_maxrss).values())
        out["workers_cpu_s"] = sum(client.run(_worker_cpu_s).values()) - workers_cpu0
        client.close()
        cluster.close()
    back = minisim.open_recording(store)
    out["reopened_shape"] = [int(s) for s in back.observed.shape]
    out["store_bytes"] = _du_bytes(store)
    shutil.rmtree(store, ignore_errors=True)
    return out


def _median(values: list[float]) -> float:
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2


def peer_estimate(duration_s: float) -> dict | None:
    """Peer peak RSS (and time) at ``duration_s``, from its rung-6 512 px runs."""
    if not VS_PEER.exists():
        return None
    report = json.loads(VS_PEER.read_text())
    pts = sorted(
        (r["duration_s"], r["peak_rss_bytes"], r["simulate_s"], r.get("load_before"))
        for r in report["results"]
        if r["impl"] == "peer"
        and r["status"] == "ok"
        and r.get("chain") == "rung6"
        and r["n_px"] == 512
    )
    if len({p[0] for p in pts}) < 2:  # repeats of one duration give no slope
        return None
    (d0, m0, s0, l0), (d1, m1, s1, l1) = pts[0], pts[-1]
    mem_slope = (m1 - m0) / (d1 - d0)
    time_slope = (s1 - s0) / (d1 - d0)
    return {
        "from": [
            {"duration_s": d0, "peak_rss_bytes": m0, "simulate_s": s0, "load": l0},
            {"duration_s": d1, "peak_rss_bytes": m1, "simulate_s": s1, "load": l1},
        ],
        "mib_per_recorded_s": mem_slope / MIB,
        "peak_rss_bytes": m0 + mem_slope * (duration_s - d0),
        "simulate_s": s0 + time_slope * (duration_s - d0),
        "duration_s": duration_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512, help="frame side, px")
    parser.add_argument("--duration", type=float, default=TARGET_DURATION_S, help="seconds")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--tmpdir", default=None, help="where the temporary stores go (default: system tmp)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per mode")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of all modes, alternating (min and median are reported)",
    )
    add_quiet_args(parser)
    parser.add_argument(
        "--no-preload",
        dest="preload",
        action="store_false",
        help="cluster workers import minisim at their first task instead of at start",
    )
    parser.add_argument("--worker", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        emit(run_worker(args.worker, args.n, args.duration, args.store, args.preload))
        return 0

    results = []
    rounds = [(k, mode) for k in range(args.repeats) for mode in args.modes]
    for round_index, mode in rounds:
        with tempfile.TemporaryDirectory(prefix="minisim-bench-zarr-", dir=args.tmpdir) as tmp:
            store = str(Path(tmp) / "rec.zarr")
            waited = wait_for_quiet(args.quiet_load, args.quiet_wait)
            print(f"measuring {mode}, {args.duration:g} s (waited {waited:.0f} s) ...", flush=True)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode]
            cmd += ["--n", str(args.n), "--duration", repr(args.duration), "--store", store]
            cmd += [] if args.preload else ["--no-preload"]
            r = run_watched(cmd, mem_limit_bytes=12 * GIB, timeout_s=args.timeout)
        print(f"  {r['status']} in {r['subprocess_wall_s']:.0f} s", flush=True)
        results.append({**r, "round": round_index})
        if r["status"] != "ok":
            print(f"  {r['detail']}")

    scale = TARGET_DURATION_S / args.duration
    ok = {r["mode"]: r for r in results if r["status"] == "ok"}  # the last round's
    walls = {
        mode: sorted(r["wall_s"] for r in results if r["status"] == "ok" and r["mode"] == mode)
        for mode in args.modes
    }
    print(
        f"\n{'mode':<8} {'frames':>7} {'chunk':>6} {'wall s':>8} {'frames/s':>9} "
        f"{'proc peak MiB':>13} {'workers MiB':>12} {'tree MiB':>9} {'store MiB':>10} "
        f"{'load':>9}"
    )
    for mode, r in ok.items():
        workers = "/".join(f"{b / MIB:.0f}" for b in r.get("worker_peak_rss_bytes", [])) or "-"
        print(
            f"{mode:<8} {r['n_frames']:>7} {r['frames_per_chunk']:>6} {r['wall_s']:>8.1f} "
            f"{r['frames_per_s']:>9.1f} {r['peak_rss_bytes'] / MIB:>13.0f} {workers:>12} "
            f"{r['watched_tree_peak_rss_bytes'] / MIB:>9.0f} {r['store_bytes'] / MIB:>10.0f} "
            f"{fmt_load(r['load_before']):>4}->{fmt_load(r['load_after'])}"
        )
    summary: dict = {"duration_s": args.duration, "extrapolation_factor": scale}
    if "threads" in ok:
        t = ok["threads"]
        summary["threads_peak_rss_bytes"] = t["peak_rss_bytes"]
        summary["memory_target"] = "PASS" if t["peak_rss_bytes"] < MEMORY_TARGET_BYTES else "FAIL"
        summary["threads_wall_s_at_1800"] = t["wall_s"] * scale
        print(
            f"\nthreads peak RSS {t['peak_rss_bytes'] / MIB:.0f} MiB vs < "
            f"{MEMORY_TARGET_BYTES / MIB:.0f} MiB: {summary['memory_target']}"
            + (f" (measured on {args.duration:g} s)" if scale != 1 else "")
        )
    if args.repeats > 1:
        print(f"\nwall time over {args.repeats} alternating rounds (min / median):")
        for mode, w in walls.items():
            if w:
                summary[f"{mode}_wall_s_min"], summary[f"{mode}_wall_s_median"] = w[0], _median(w)
                print(f"  {mode:<8} {w[0]:>7.1f} / {_median(w):>7.1f} s")
    if walls.get("lc1") and walls.get("lc2"):
        pairs = [
            (a["wall_s"], b["wall_s"])
            for a in results
            for b in results
            if a["status"] == b["status"] == "ok"
            and a["round"] == b["round"]
            and (a["mode"], b["mode"]) == ("lc1", "lc2")
        ]
        ratios = sorted(one / two for one, two in pairs)
        speedup = walls["lc1"][0] / walls["lc2"][0]  # fastest against fastest
        summary["lc2_over_lc1_speedup"] = speedup
        summary["lc2_over_lc1_speedup_per_round"] = ratios
        if ratios:
            print(
                "2 workers over 1, per round: "
                + ", ".join(f"{x:.2f}x" for x in ratios)
                + f" (median {_median(ratios):.2f}x)"
            )
        for mode in ("lc1", "lc2"):  # CPU seconds are steadier than wall time under load
            c = sorted(
                r["workers_cpu_s"] for r in results if r["mode"] == mode and "workers_cpu_s" in r
            )
            if c:
                summary[f"{mode}_workers_cpu_s_median"] = _median(c)
                print(f"  {mode} workers' CPU seconds, median: {_median(c):.1f}")
        summary["speedup_target"] = "PASS" if speedup >= SPEEDUP_TARGET else "FAIL"
        print(
            f"2-worker speed-up over 1 worker: {speedup:.2f}x vs >= {SPEEDUP_TARGET}x: "
            f"{summary['speedup_target']}"
        )
    if scale != 1:
        print(f"\nextrapolated linearly in frames to {TARGET_DURATION_S:g} s (x{scale:g}):")
        for mode, r in ok.items():
            est = r["wall_s"] * scale
            summary[f"{mode}_wall_s_at_1800"] = est
            print(f"  {mode:<8} {est:>8.0f} s ({est / 60:.1f} min)")
    peer = peer_estimate(TARGET_DURATION_S)
    summary["peer_estimate"] = peer
    if peer:
        print(
            f"\neager peer at {TARGET_DURATION_S:g} s (linear from its "
            f"{peer['from'][0]['duration_s']:g} s and {peer['from'][1]['duration_s']:g} s "
            f"runs): peak RSS ~{peer['peak_rss_bytes'] / GIB:.1f} GiB "
            f"({peer['mib_per_recorded_s']:.1f} MiB per recorded s), "
            f"simulate ~{peer['simulate_s'] / 60:.0f} min if memory allowed"
        )
    write_json(
        args.output,
        {
            "benchmark": "zarr",
            "spec": (
                f"ladder acquisition at {args.n}x{args.n} px, {args.duration:g} s, 20 fps; "
                "full rung-6 chain with Sensor() (Poisson)"
            ),
            "measurement": {
                "wall_s": "simulate(spec) + rec.to_zarr(path), cluster start-up excluded",
                "cluster_workers": (
                    "one thread each; minisim imported at their start"
                    if args.preload
                    else "one thread each; minisim imported at their first task"
                ),
                "peak_rss_bytes": "ru_maxrss of the process calling to_zarr",
                "worker_peak_rss_bytes": "ru_maxrss of each LocalCluster worker",
                "watched_tree_peak_rss_bytes": "peak summed RSS of the process tree (0.2 s)",
                "load": "1-minute load average before/after each mode (2-core machine)",
            },
            "environment": environment(),
            "summary": summary,
            "results": results,
        },
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
