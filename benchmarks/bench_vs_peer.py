"""Benchmark our lazy minisim against the public eager minisim (1.0.x) on the same specs.

Usage::

    python benchmarks/bench_vs_peer.py                       # all cases
    python benchmarks/bench_vs_peer.py --peer-python /path/to/venv/bin/python
    python benchmarks/bench_vs_peer.py --cases 200x20 200x20-rung1

The peer is the public eager package of the same name, installed in its *own* virtual
environment outside this repository (it imports as ``minisim`` too), e.g.::

    python3 -m venv /work/peer-venv && /work/peer-venv/bin/pip install minisim==1.0.3

Only its public API is run; none of its code is read or copied.

For every case the driver starts ONE fresh subprocess per implementation, each running this
same file in worker mode:

* ours (``sys.executable``): ``simulate(spec)`` (graph build, timed), then
  ``rec.observed.max().compute()`` (streams every pixel through bounded memory, timed), then
  ``rec.observed.values`` (materializes the whole movie, timed). ``ru_maxrss`` is recorded
  after each, so the peak after the streaming reduction is the streaming peak and the peak
  after ``.values`` is the materializing peak (``ru_maxrss`` only grows);
* the peer (``--peer-python``): ``minisim.simulate(spec)``, which is eager and returns the
  movie as a numpy array.

Each worker prints one JSON line with wall times, the resident memory right after the
imports (baseline) and the peak resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``), and
the number of cells placed (``rec.ground_truth.n_units``). The driver kills a worker whose
resident memory exceeds ``--mem-limit-gib`` (reported as "did not fit") so the machine is
never pushed into the OOM killer. Results go to ``bench-results/vs_peer.json``.
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
DEFAULT_OUTPUT = REPO / "bench-results" / "vs_peer.json"
DEFAULT_PEER_PYTHON = "/work/peer-venv/bin/python"
MIB = 2**20

#: name -> (frame side N in px, duration D in s, with CellOptics)
CASES: dict[str, tuple[int, float, bool]] = {
    "200x20": (200, 20.0, True),
    "200x20-rung1": (200, 20.0, False),
    "512x60": (512, 60.0, True),
    "512x120": (512, 120.0, True),
}


# --------------------------------------------------------------------------- worker side
# Only the standard library at module level: the peer's interpreter runs this file too.


def _maxrss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


def _cpu_s() -> float:
    """User + system CPU time of this process so far (all threads), in seconds."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _current_rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def run_worker(impl: str, n_px: int, duration_s: float, with_optics: bool) -> dict:
    """One measurement of one implementation, meant to run in a fresh interpreter."""
    t0 = time.perf_counter()
    import numpy as np

    import minisim
    from minisim import (
        Acquisition,
        CellActivity,
        CellOptics,
        Composite,
        ImageSensor,
        Optics,
        PlaceNeurons,
        Spec,
        simulate,
    )

    import_s = time.perf_counter() - t0
    module_path = str(Path(minisim.__file__).resolve())
    in_repo = module_path.startswith(str(REPO) + os.sep)
    if (impl == "ours") != in_repo:
        raise RuntimeError(f"impl={impl!r} imported minisim from {module_path}")
    baseline_rss = _current_rss_bytes()
    baseline_maxrss = _maxrss_bytes()

    acq = Acquisition(
        fps=20.0,
        duration_s=duration_s,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=n_px, n_px_width=n_px, pixel_pitch_um=8.0),
    )
    steps = [PlaceNeurons(), CellActivity()]
    if with_optics:
        steps.append(CellOptics())
    steps.append(Composite())
    spec = Spec(acquisition=acq, seed=1, steps=steps)

    out: dict = {
        "impl": impl,
        "minisim_version": getattr(minisim, "__version__", None),
        "minisim_path": module_path,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "import_s": import_s,
        "loadavg_at_start": list(os.getloadavg()),
        "baseline_rss_bytes": baseline_rss,
        "baseline_maxrss_bytes": baseline_maxrss,
    }

    if impl == "peer":
        c0, t0 = _cpu_s(), time.perf_counter()
        rec = simulate(spec)
        movie = np.asarray(rec.observed)  # eager: already a numpy array
        out["simulate_s"] = time.perf_counter() - t0
        out["simulate_cpu_s"] = _cpu_s() - c0
        out["peak_rss_bytes"] = _maxrss_bytes()
        out["observed_type"] = type(rec.observed).__name__
        out["shape"] = list(movie.shape)
        out["dtype"] = str(movie.dtype)
        out["max_value"] = float(movie.max())
        out["n_cells"] = int(rec.ground_truth.n_units)
        return out

    import dask

    c0, t0 = _cpu_s(), time.perf_counter()
    rec = simulate(spec)
    out["build_s"] = time.perf_counter() - t0
    out["build_cpu_s"] = _cpu_s() - c0
    out["after_build_rss_bytes"] = _current_rss_bytes()
    observed = rec.observed
    out["n_cells"] = int(rec.ground_truth.n_units)
    out["shape"] = [int(s) for s in observed.shape]
    out["dtype"] = str(observed.dtype)
    out["n_frame_chunks"] = len(observed.data.chunks[0])
    out["frames_per_chunk"] = int(max(observed.data.chunks[0]))
    out["n_graph_tasks"] = len(observed.data.__dask_graph__())
    out["scheduler"] = str(dask.config.get("scheduler", "threads (default)"))

    c0, t0 = _cpu_s(), time.perf_counter()
    out["max_value"] = float(observed.max().compute())
    out["stream_compute_s"] = time.perf_counter() - t0
    out["stream_compute_cpu_s"] = _cpu_s() - c0
    out["stream_peak_rss_bytes"] = _maxrss_bytes()

    c0, t0 = _cpu_s(), time.perf_counter()
    values = observed.values
    out["materialize_compute_s"] = time.perf_counter() - t0
    out["materialize_compute_cpu_s"] = _cpu_s() - c0
    out["materialize_peak_rss_bytes"] = _maxrss_bytes()
    out["materialized_max_value"] = float(values.max())
    return out


# --------------------------------------------------------------------------- driver side


def _rss_of(pid: int) -> int:
    """Current resident memory of a child process, in bytes (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def measure(
    impl: str,
    python: str,
    case: str,
    *,
    mem_limit_bytes: int,
    timeout_s: float | None,
) -> dict:
    """Run one worker subprocess; kill it if it outgrows the memory limit or the timeout."""
    n_px, duration_s, with_optics = CASES[case]
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        impl,
        "--n",
        str(n_px),
        "--duration",
        repr(duration_s),
    ]
    if not with_optics:
        cmd.append("--no-optics")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # each interpreter imports its own minisim
    # Run from a neutral directory so the peer cannot pick up ./minisim of the repo.
    cwd = "/" if impl == "peer" else str(REPO)
    base = {"case": case, "impl": impl, "n_px": n_px, "duration_s": duration_s}
    base["with_cell_optics"] = with_optics
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env
    )
    killed = None
    watched_peak = 0
    while proc.poll() is None:
        rss = _rss_of(proc.pid)
        watched_peak = max(watched_peak, rss)
        if rss > mem_limit_bytes:
            killed = f"resident memory {rss / MIB:.0f} MiB over the {mem_limit_bytes / MIB:.0f} MiB limit"
        elif timeout_s is not None and time.perf_counter() - t0 > timeout_s:
            killed = f"timeout after {timeout_s:g} s"
        if killed:
            proc.kill()
            break
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    wall_s = time.perf_counter() - t0
    base["subprocess_wall_s"] = wall_s
    base["watched_peak_rss_bytes"] = watched_peak
    if killed:
        return {**base, "status": "did not fit", "detail": killed}
    if proc.returncode != 0:
        tail = (stdout + stderr).strip().splitlines()[-15:]
        sys.stderr.write("\n".join(tail) + "\n")
        return {**base, "status": "failed", "detail": f"exit {proc.returncode}: {tail[-1:]}"}
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**base, "status": "ok", **result}


def rows_of(results: list[dict]) -> list[dict]:
    """Table rows: one per peer run, two per ours run (stream and materialize)."""
    peer_time = {
        r["case"]: r["simulate_s"] for r in results if r["impl"] == "peer" and r["status"] == "ok"
    }
    rows = []
    for r in results:
        row = {"case": r["case"], "cells": r.get("n_cells")}
        if r["status"] != "ok":
            rows.append({**row, "impl": r["impl"], "status": f"{r['status']}: {r['detail']}"})
            continue
        base = r["baseline_rss_bytes"] or r["baseline_maxrss_bytes"]
        if r["impl"] == "peer":
            rows.append(
                {
                    **row,
                    "impl": "peer simulate()",
                    "wall_s": r["simulate_s"],
                    "cpu_s": r.get("simulate_cpu_s"),
                    "load": r.get("loadavg_at_start", [None])[0],
                    "base_mib": base / MIB,
                    "peak_mib": r["peak_rss_bytes"] / MIB,
                    "speedup": None,
                }
            )
            continue
        pt = peer_time.get(r["case"])
        for mode, label in (("stream", "ours build+max()"), ("materialize", "ours build+.values")):
            wall = r["build_s"] + r[f"{mode}_compute_s"]
            cpu = r.get("build_cpu_s", 0.0) + r.get(f"{mode}_compute_cpu_s", float("nan"))
            rows.append(
                {
                    **row,
                    "impl": label,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "load": r.get("loadavg_at_start", [None])[0],
                    "base_mib": base / MIB,
                    "peak_mib": r[f"{mode}_peak_rss_bytes"] / MIB,
                    "speedup": None if pt is None else pt / wall,
                }
            )
    return rows


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'case':<13} {'impl':<19} {'cells':>6} {'wall s':>8} {'CPU s':>7} {'base MiB':>8} "
        f"{'peak MiB':>9} {'speed-up':>8} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = "-" if r.get("cells") is None else str(r["cells"])
        if "status" in r:
            print(f"{r['case']:<13} {r['impl']:<19} {cells:>6} {r['status']}")
            continue
        speed = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        cpu = "-" if r.get("cpu_s") is None else f"{r['cpu_s']:.1f}"
        load = "-" if r.get("load") is None else f"{r['load']:.1f}"
        print(
            f"{r['case']:<13} {r['impl']:<19} {cells:>6} {r['wall_s']:>8.2f} {cpu:>7} "
            f"{r['base_mib']:>8.0f} {r['peak_mib']:>9.0f} {speed:>8} {load:>5}"
        )


def cell_counts(results: list[dict]) -> dict:
    counts: dict = {}
    for r in results:
        if r.get("n_cells") is not None:
            counts.setdefault(r["case"], {})[r["impl"]] = r["n_cells"]
    return counts


def _environment(peer_python: str) -> dict:
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
        "ours_python": sys.executable,
        "peer_python": peer_python,
        "git_commit": commit,
    }


def write_report(path: Path, results: list[dict], peer_python: str) -> None:
    report = {
        "benchmark": "vs_peer",
        "spec": (
            "Acquisition(fps=20, duration_s=D, Optics(magnification=8), "
            "ImageSensor(N x N px, pitch 8 um)); seed=1; steps=[PlaceNeurons(), "
            "CellActivity(), CellOptics(), Composite()] (rung1 cases: without CellOptics)"
        ),
        "measurement": {
            "peer": "wall time of minisim.simulate(spec) (eager, numpy movie)",
            "ours stream": "simulate(spec) + rec.observed.max().compute()",
            "ours materialize": "simulate(spec) + rec.observed.values",
            "speedup": "peer wall time / ours wall time",
            "cpu_s": "user+system CPU seconds of the worker over the same span (all threads)",
            "load": "1-minute load average when the worker started (machine has 2 cores)",
            "rss": "peak = getrusage(RUSAGE_SELF).ru_maxrss; base = RSS after imports",
        },
        "units": {"MiB": "2**20 B", "times": "s"},
        "environment": _environment(peer_python),
        "cell_counts": cell_counts(results),
        "rows": rows_of(results),
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="peer interpreter")
    parser.add_argument(
        "--cases", nargs="+", choices=list(CASES), default=list(CASES), help="cases to run"
    )
    parser.add_argument("--impls", nargs="+", choices=["ours", "peer"], default=["ours", "peer"])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output path")
    parser.add_argument(
        "--mem-limit-gib",
        type=float,
        default=18.0,
        help="kill a worker whose resident memory exceeds this (reported as did not fit)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per worker")
    parser.add_argument("--worker", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--no-optics", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(run_worker(args.worker, args.n, args.duration, not args.no_optics)))
        return 0

    if "peer" in args.impls and not Path(args.peer_python).exists():
        parser.error(f"--peer-python {args.peer_python} does not exist (see the module doc)")
    pythons = {"ours": sys.executable, "peer": args.peer_python}
    mem_limit = int(args.mem_limit_gib * 2**30)
    results: list[dict] = []
    for case in args.cases:
        for impl in args.impls:
            print(f"measuring {case} {impl} ...", flush=True)
            r = measure(
                impl, pythons[impl], case, mem_limit_bytes=mem_limit, timeout_s=args.timeout
            )
            print(f"  {r['status']} in {r['subprocess_wall_s']:.1f} s", flush=True)
            results.append(r)
            write_report(args.output, results, args.peer_python)  # partial results survive
    print()
    print_table(rows_of(results))
    print()
    for case, counts in cell_counts(results).items():
        print(f"cells placed, {case}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
