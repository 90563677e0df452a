"""Benchmark our lazy minisim against the public eager minisim (1.0.x) on the same specs.

Usage::

    python benchmarks/bench_vs_peer.py                       # the default cases
    python benchmarks/bench_vs_peer.py --peer-python /path/to/venv/bin/python
    python benchmarks/bench_vs_peer.py --cases rung6-200x20 rung6-512x60
    python benchmarks/bench_vs_peer.py --cases all
    python benchmarks/bench_vs_peer.py --cases rung6-200x20 rung6-512x60 --repeats 3

The peer is the public eager package of the same name, installed in its *own* virtual
environment outside this repository (it imports as ``minisim`` too), e.g.::

    python3 -m venv /work/peer-venv && /work/peer-venv/bin/pip install minisim==1.0.3

Only its public API is run; none of its code is read or copied.

Cases are ladder rungs (``reference/seed-examples.txt``) on the ladder's acquisition
(``Optics(magnification=8)``, 8 µm pitch → 1 µm/px, 20 fps, seed 1) at N×N px for D s:

* ``rung1``: ``[PlaceNeurons(), CellActivity(), Composite()]``;
* ``rung2``: rung 1 plus ``CellOptics()``;
* ``rung6``: the full chain ``[PlaceNeurons(), CellActivity(), Bleaching(), CellOptics(),
  Composite(), Neuropil(), BrainMotion(), IlluminationProfile(), Vignette(), Leakage(),
  Sensor()]``. Ours runs twice: ``Sensor(shot_noise="gaussian")`` (``ours-gaussian``,
  like for like with the peer, which draws one Gaussian) and the default ``Sensor()``
  (``ours``, Poisson shot noise). The peer always gets plain ``Sensor()``.

For every case and implementation the driver starts ONE fresh subprocess running this same
file in worker mode:

* ours (``sys.executable``): ``simulate(spec)`` (graph build, timed), then
  ``rec.observed.max().compute()`` (streams every pixel through bounded memory, timed), then
  ``rec.observed.values`` (materializes the whole movie, timed). ``ru_maxrss`` is recorded
  after each, so the peak after the streaming reduction is the streaming peak and the peak
  after ``.values`` is the materializing peak (``ru_maxrss`` only grows);
* the peer (``--peer-python``): ``minisim.simulate(spec)``, which is eager and returns the
  movie as a numpy array.

Wall time compared is ours ``simulate + max().compute()`` vs the peer's ``simulate``;
speed-up = peer / ours. The 1-minute load average before and after each worker is
recorded (the machine is shared). The driver kills a worker whose resident memory exceeds
``--mem-limit-gib`` or when the machine's available memory runs low (reported as "did not
fit"). Results go to ``bench-results/vs_peer.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402  (stdlib only: the peer's interpreter imports it too)
    GIB,
    MIB,
    REPO,
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

DEFAULT_OUTPUT = RESULTS_DIR / "vs_peer.json"
DEFAULT_PEER_PYTHON = "/work/peer-venv/bin/python"

#: name -> (frame side N in px, duration D in s, ladder chain)
CASES: dict[str, tuple[int, float, str]] = {
    "rung1-200x20": (200, 20.0, "rung1"),
    "rung2-200x20": (200, 20.0, "rung2"),
    "rung2-512x60": (512, 60.0, "rung2"),
    "rung2-512x120": (512, 120.0, "rung2"),
    "rung6-200x20": (200, 20.0, "rung6"),
    "rung6-512x60": (512, 60.0, "rung6"),
    "rung6-512x120": (512, 120.0, "rung6"),
}
DEFAULT_CASES = ["rung2-200x20", "rung2-512x60", "rung6-200x20", "rung6-512x60", "rung6-512x120"]
#: implementation -> Sensor shot_noise passed to ours (None: plain Sensor())
IMPLS: dict[str, str | None] = {"ours-gaussian": "gaussian", "ours": None, "peer": None}


# --------------------------------------------------------------------------- worker side


def run_worker(impl: str, n_px: int, duration_s: float, chain: str) -> dict:
    """One measurement of one implementation, meant to run in a fresh interpreter."""
    t0 = time.perf_counter()
    import numpy as np

    import minisim

    import_s = time.perf_counter() - t0
    module_path = str(Path(minisim.__file__).resolve())
    in_repo = module_path.startswith(str(REPO) + os.sep)
    if impl.startswith("ours") != in_repo:
        raise RuntimeError(f"impl={impl!r} imported minisim from {module_path}")
    baseline_rss = current_rss_bytes()
    baseline_maxrss = maxrss_bytes()
    spec = make_spec(n_px, duration_s, chain, shot_noise=IMPLS[impl])

    out: dict = {
        "minisim_version": getattr(minisim, "__version__", None),
        "minisim_path": module_path,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "import_s": import_s,
        "loadavg_at_start": list(os.getloadavg()),
        "baseline_rss_bytes": baseline_rss,
        "baseline_maxrss_bytes": baseline_maxrss,
        "sensor": [repr(s) for s in spec.steps if type(s).__name__ == "Sensor"],
    }

    if impl == "peer":
        c0, t0 = cpu_s(), time.perf_counter()
        rec = minisim.simulate(spec)
        movie = np.asarray(rec.observed)  # eager: already a numpy array
        out["simulate_s"] = time.perf_counter() - t0
        out["simulate_cpu_s"] = cpu_s() - c0
        out["peak_rss_bytes"] = maxrss_bytes()
        out["observed_type"] = type(rec.observed).__name__
        out["shape"] = list(movie.shape)
        out["dtype"] = str(movie.dtype)
        out["max_value"] = float(movie.max())
        out["n_cells"] = int(rec.ground_truth.n_units)
        return out

    import dask

    c0, t0 = cpu_s(), time.perf_counter()
    rec = minisim.simulate(spec)
    out["build_s"] = time.perf_counter() - t0
    out["build_cpu_s"] = cpu_s() - c0
    out["after_build_rss_bytes"] = current_rss_bytes()
    observed = rec.observed
    out["n_cells"] = int(rec.ground_truth.n_units)
    out["shape"] = [int(s) for s in observed.shape]
    out["dtype"] = str(observed.dtype)
    out["n_frame_chunks"] = len(observed.data.chunks[0])
    out["frames_per_chunk"] = int(max(observed.data.chunks[0]))
    out["n_graph_tasks"] = len(observed.data.__dask_graph__())
    out["scheduler"] = str(dask.config.get("scheduler", "threads (default)"))

    c0, t0 = cpu_s(), time.perf_counter()
    out["max_value"] = float(observed.max().compute())
    out["stream_compute_s"] = time.perf_counter() - t0
    out["stream_compute_cpu_s"] = cpu_s() - c0
    out["stream_peak_rss_bytes"] = maxrss_bytes()

    c0, t0 = cpu_s(), time.perf_counter()
    values = observed.values
    out["materialize_compute_s"] = time.perf_counter() - t0
    out["materialize_compute_cpu_s"] = cpu_s() - c0
    out["materialize_peak_rss_bytes"] = maxrss_bytes()
    out["materialized_max_value"] = float(values.max())
    return out


# --------------------------------------------------------------------------- driver side


def measure(
    impl: str, python: str, case: str, *, mem_limit_bytes: int, timeout_s: float | None
) -> dict:
    """Run one worker subprocess; kill it if it outgrows the memory limit or the timeout."""
    n_px, duration_s, chain = CASES[case]
    cmd = [python, str(Path(__file__).resolve()), "--worker", impl, "--case", case]
    # Run the peer from a neutral directory so it cannot pick up ./minisim of the repo.
    cwd = "/" if impl == "peer" else str(REPO)
    base = {"case": case, "impl": impl, "n_px": n_px, "duration_s": duration_s, "chain": chain}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} if impl == "peer" else None
    r = run_watched(cmd, cwd=cwd, mem_limit_bytes=mem_limit_bytes, timeout_s=timeout_s, env=env)
    return {**base, **r}


def rows_of(results: list[dict]) -> list[dict]:
    """Table rows: one per peer run, two per ours run (stream and materialize)."""
    peer_time = {
        r["case"]: r["simulate_s"] for r in results if r["impl"] == "peer" and r["status"] == "ok"
    }
    rows = []
    for r in results:
        row = {"case": r["case"], "cells": r.get("n_cells"), "load": r.get("load_before")}
        if r["status"] != "ok":
            label = "peer simulate()" if r["impl"] == "peer" else f"{r['impl']} max()"
            rows.append({**row, "impl": label, "status": f"{r['status']}: {r['detail']}"})
            continue
        base = r["baseline_rss_bytes"] or r["baseline_maxrss_bytes"]
        if r["impl"] == "peer":
            rows.append(
                {
                    **row,
                    "impl": "peer simulate()",
                    "wall_s": r["simulate_s"],
                    "cpu_s": r.get("simulate_cpu_s"),
                    "base_mib": base / MIB,
                    "peak_mib": r["peak_rss_bytes"] / MIB,
                    "speedup": None,
                }
            )
            continue
        pt = peer_time.get(r["case"])
        for mode, what in (("stream", "max()"), ("materialize", ".values")):
            wall = r["build_s"] + r[f"{mode}_compute_s"]
            cpu = r.get("build_cpu_s", 0.0) + r.get(f"{mode}_compute_cpu_s", float("nan"))
            rows.append(
                {
                    **row,
                    "impl": f"{r['impl']} {what}",
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "base_mib": base / MIB,
                    "peak_mib": r[f"{mode}_peak_rss_bytes"] / MIB,
                    "speedup": None if pt is None else pt / wall,
                }
            )
    return rows


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'case':<14} {'impl':<22} {'cells':>6} {'wall s':>8} {'CPU s':>7} {'base MiB':>8} "
        f"{'peak MiB':>9} {'speed-up':>8} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = "-" if r.get("cells") is None else str(r["cells"])
        if "status" in r:
            print(f"{r['case']:<14} {r['impl']:<22} {cells:>6} {r['status']}")
            continue
        speed = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        cpu = "-" if r.get("cpu_s") is None else f"{r['cpu_s']:.1f}"
        print(
            f"{r['case']:<14} {r['impl']:<22} {cells:>6} {r['wall_s']:>8.2f} {cpu:>7} "
            f"{r['base_mib']:>8.0f} {r['peak_mib']:>9.0f} {speed:>8} {fmt_load(r['load']):>5}"
        )


def peer_memory_fit(results: list[dict], chain: str = "rung6", n_px: int = 512) -> dict | None:
    """Least-squares line through the peer's peak RSS vs duration for one chain and size."""
    pts = sorted(
        (r["duration_s"], r["peak_rss_bytes"])
        for r in results
        if r["impl"] == "peer" and r["status"] == "ok" and r["chain"] == chain and r["n_px"] == n_px
    )
    if len({d for d, _ in pts}) < 2:  # a line needs two durations (repeats share one)
        return None
    n = len(pts)
    mx = sum(d for d, _ in pts) / n
    my = sum(b for _, b in pts) / n
    slope = sum((d - mx) * (b - my) for d, b in pts) / sum((d - mx) ** 2 for d, _ in pts)
    icpt = my - slope * mx
    return {
        "chain": chain,
        "n_px": n_px,
        "points": [{"duration_s": d, "peak_rss_bytes": b} for d, b in pts],
        "bytes_per_s": slope,
        "intercept_bytes": icpt,
        "mib_per_s": slope / MIB,
        "bytes_per_frame_at_20fps": slope / 20.0,
    }


def summary_rows(results: list[dict]) -> list[dict]:
    """Per case and implementation over the alternating rounds: min and median wall time
    (ours: simulate + max(); the peer: simulate) and CPU time, and the speed-ups."""

    def timing(r):
        if r["impl"] == "peer":
            return r["simulate_s"], r.get("simulate_cpu_s")
        return (
            r["build_s"] + r["stream_compute_s"],
            r.get("build_cpu_s", 0.0) + r.get("stream_compute_cpu_s", 0.0),
        )

    rows = []
    for case in dict.fromkeys(r["case"] for r in results):
        stats = {}
        for impl in IMPLS:
            runs = [r for r in results if r["case"] == case and r["impl"] == impl]
            ok = [timing(r) for r in runs if r["status"] == "ok"]
            if not ok:
                continue
            wall, cpu = sorted(w for w, _ in ok), sorted(c for _, c in ok if c is not None)
            peak = max(
                r.get("stream_peak_rss_bytes", r.get("peak_rss_bytes", 0))
                for r in runs
                if r["status"] == "ok"
            )
            stats[impl] = {
                "n": len(ok),
                "wall_min": wall[0],
                "wall_median": _median(wall),
                "cpu_median": _median(cpu) if cpu else None,
                "peak_bytes": peak,
                "loads": [r["load_before"][0] for r in runs],
            }
        peer = stats.get("peer")
        for impl, st in stats.items():
            if peer and impl != "peer":
                st["speedup_min"] = peer["wall_min"] / st["wall_min"]
                st["speedup_median"] = peer["wall_median"] / st["wall_median"]
                if st["cpu_median"] and peer["cpu_median"]:
                    st["cpu_speedup_median"] = peer["cpu_median"] / st["cpu_median"]
            rows.append({"case": case, "impl": impl, **st})
    return rows


def _median(values: list[float]) -> float:
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2


def print_summary(results: list[dict]) -> None:
    print(
        f"{'case':<14} {'impl':<14} {'n':>2} {'wall min':>9} {'median':>7} {'CPU med':>8} "
        f"{'peak MiB':>9} {'x (min)':>8} {'x (med)':>8} {'x CPU':>6}  loads"
    )
    for r in summary_rows(results):

        def x(key, r=r):
            return f"{r[key]:.2f}x" if key in r else "-"

        cpu = "-" if r["cpu_median"] is None else f"{r['cpu_median']:.1f}"
        print(
            f"{r['case']:<14} {r['impl']:<14} {r['n']:>2} {r['wall_min']:>9.2f} "
            f"{r['wall_median']:>7.2f} {cpu:>8} {r['peak_bytes'] / MIB:>9.0f} "
            f"{x('speedup_min'):>8} {x('speedup_median'):>8} {x('cpu_speedup_median'):>6}  "
            + " ".join(f"{v:.1f}" for v in r["loads"])
        )


def cell_counts(results: list[dict]) -> dict:
    counts: dict = {}
    for r in results:
        if r.get("n_cells") is not None:
            counts.setdefault(r["case"], {})[r["impl"]] = r["n_cells"]
    return counts


def write_report(path: Path, results: list[dict], peer_python: str) -> None:
    report = {
        "benchmark": "vs_peer",
        "spec": (
            "Acquisition(fps=20, duration_s=D, Optics(magnification=8), "
            "ImageSensor(N x N px, pitch 8 um)); seed=1; steps of the ladder rung "
            "(rung2: PlaceNeurons, CellActivity, CellOptics, Composite; rung6: the full chain "
            "with Bleaching, Neuropil, BrainMotion, IlluminationProfile, Vignette, Leakage, "
            "Sensor). ours-gaussian: Sensor(shot_noise='gaussian'); ours and peer: Sensor()"
        ),
        "measurement": {
            "peer": "wall time of minisim.simulate(spec) (eager, numpy movie)",
            "ours max()": "simulate(spec) + rec.observed.max().compute()",
            "ours .values": "simulate(spec) + rec.observed.values",
            "speedup": "peer wall time / ours wall time",
            "cpu_s": "user+system CPU seconds of the worker over the same span (all threads)",
            "load": "1-minute load average just before the worker started (2-core machine)",
            "rss": "peak = getrusage(RUSAGE_SELF).ru_maxrss; base = RSS after imports",
        },
        "units": {"MiB": "2**20 B", "times": "s"},
        "environment": environment(peer_python=peer_python),
        "cell_counts": cell_counts(results),
        "peer_memory_fit_rung6_512": peer_memory_fit(results),
        "rows": rows_of(results),
        "summary": summary_rows(results),
        "results": results,
    }
    write_json(path, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="peer interpreter")
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=[*CASES, "all"],
        default=DEFAULT_CASES,
        help="cases to run (default: %(default)s)",
    )
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), default=list(IMPLS))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output path")
    parser.add_argument(
        "--mem-limit-gib",
        type=float,
        default=18.0,
        help="kill a worker whose resident memory exceeds this (reported as did not fit)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per worker")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of every case and implementation, alternating (min/median reported)",
    )
    add_quiet_args(parser)
    parser.add_argument("--worker", choices=list(IMPLS), help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        n_px, duration_s, chain = CASES[args.case]
        emit({"impl": args.worker, **run_worker(args.worker, n_px, duration_s, chain)})
        return 0

    cases = list(CASES) if "all" in args.cases else args.cases
    if "peer" in args.impls and not Path(args.peer_python).exists():
        parser.error(f"--peer-python {args.peer_python} does not exist (see the module doc)")
    mem_limit = int(args.mem_limit_gib * GIB)
    results: list[dict] = []
    rounds = [(k, case) for k in range(args.repeats) for case in cases]
    for round_index, case in rounds:
        for impl in args.impls:
            if impl == "ours-gaussian" and CASES[case][2] != "rung6":
                continue  # no sensor: the shot-noise variant does not apply
            python = args.peer_python if impl == "peer" else sys.executable
            waited = wait_for_quiet(args.quiet_load, args.quiet_wait)
            print(f"measuring {case} {impl} (waited {waited:.0f} s for quiet) ...", flush=True)
            r = measure(impl, python, case, mem_limit_bytes=mem_limit, timeout_s=args.timeout)
            print(
                f"  {r['status']} in {r['subprocess_wall_s']:.1f} s "
                f"(load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f})",
                flush=True,
            )
            results.append({**r, "round": round_index})
            write_report(args.output, results, args.peer_python)  # partial results survive
    print()
    print_table(rows_of(results))
    print()
    if args.repeats > 1:
        print_summary(results)
        print()
    for case, counts in cell_counts(results).items():
        print(f"cells placed, {case}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    fit = peer_memory_fit(results)
    if fit:
        print(
            f"peer peak RSS, rung 6 at 512 px: {fit['mib_per_s']:.1f} MiB per recorded second "
            f"+ {fit['intercept_bytes'] / MIB:.0f} MiB"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
