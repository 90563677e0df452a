"""Where a LocalCluster's workers spend a Zarr write: busy, waiting, transferring.

Usage::

    python benchmarks/cluster_timeline.py                  # 1 then 2 workers, 60 s at 512 px
    python benchmarks/cluster_timeline.py --workers 2 --duration 20 --n 256

For each worker count, a fresh process starts a ``LocalCluster`` of one-thread workers,
then times ``simulate(spec)`` plus ``rec.to_zarr(store)`` under distributed's task stream
and prints, per worker, the seconds its tasks computed, the seconds spent receiving
data or spilling to disk, the idle gaps longer than 0.1 s, and when the first task
started after ``simulate()`` was called (graph building and shipping, and with workers that import
minisim only when their first task arrives, that import). Workers import minisim when
they start, as with ``dask worker --preload minisim`` and as in ``bench_zarr.py``;
``--no-preload`` leaves it to their first task. ``bench_zarr.py`` measures the
same write with memory watching and alternating rounds; this script says where the
seconds of one run went.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_spec  # noqa: E402


def run_worker(n_workers: int, n_px: int, duration_s: float, preload: bool) -> dict:
    from distributed import Client, LocalCluster, get_task_stream

    import minisim

    options = {"preload": ["minisim"]} if preload else {}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None,
                      **options) as cluster, \
            Client(cluster) as client, tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        spec = make_spec(n_px, duration_s, "rung6")
        called, t0 = time.time(), time.perf_counter()
        with get_task_stream(client) as stream:
            minisim.simulate(spec).to_zarr(str(Path(tmp) / "rec.zarr"))
        wall = time.perf_counter() - t0
    workers: dict[str, dict] = {}
    spans = [(d["worker"], s) for d in stream.data for s in d["startstops"]]
    first = min(s["start"] for _, s in spans)
    for worker, s in spans:
        w = workers.setdefault(worker, {"compute_s": 0.0, "other_s": 0.0, "spans": []})
        # Besides "compute": "transfer" between workers, "disk-read"/"disk-write" spilling.
        w["compute_s" if s["action"] == "compute" else "other_s"] += s["stop"] - s["start"]
        w["spans"].append((s["start"] - first, s["stop"] - first))
    for w in workers.values():
        gaps, reached = [], 0.0
        for start, stop in sorted(w.pop("spans")):
            if start - reached > 0.1:
                gaps.append((round(reached, 2), round(start - reached, 2)))
            reached = max(reached, stop)
        w["idle_gaps"], w["last_stop_s"] = gaps, reached
    return {"workers": n_workers, "wall_s": wall, "first_task_after_call_s": first - called,
            "per_worker": list(workers.values())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n", type=int, default=512, help="frame side, px")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--no-preload", dest="preload", action="store_false",
                        help="workers import minisim at their first task, not at start")  # fmt: skip
    parser.add_argument("--worker-mode", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_mode:
        print(json.dumps(run_worker(args.worker_mode, args.n, args.duration, args.preload)))
        return
    walls = {}
    for n in args.workers:
        cmd = [sys.executable, __file__, "--worker-mode", str(n), "--n", str(args.n),
               "--duration", repr(args.duration)] + ["--no-preload"] * (not args.preload)  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        walls[n] = r["wall_s"]
        print(f"{n} worker(s): wall {r['wall_s']:.2f} s, first task "
              f"{r['first_task_after_call_s']:.2f} s after simulate() was called")  # fmt: skip
        for i, w in enumerate(r["per_worker"]):
            print(f"  worker {i}: computing {w['compute_s']:.2f} s, transfers and spilling "
                  f"{w['other_s']:.2f} s, last task ends {w['last_stop_s']:.2f} s, "
                  f"idle gaps (start, seconds) {w['idle_gaps'][:6]}")  # fmt: skip
    if 1 in walls and len(walls) > 1:
        for n, wall in walls.items():
            if n != 1:
                print(f"{n} workers over 1: {walls[1] / wall:.2f}x (one run each)")


if __name__ == "__main__":
    main()
