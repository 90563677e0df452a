"""What a LocalCluster worker holds while writing a full-chain recording to Zarr.

Usage::

    python benchmarks/profile_cluster_memory.py                  # 512 px, 60 s and 150 s
    python benchmarks/profile_cluster_memory.py --durations 300 --n-workers 2

A fresh subprocess per duration starts ``LocalCluster(n_workers=N, threads_per_worker=1,
dashboard_address=None)``, then runs ``simulate(spec).to_zarr(path)`` (full rung-6 chain,
``Sensor()``, 512x512 px) while a thread polls every worker once a second with
``Client.run``: its resident memory, and the task results it holds (``worker.data``),
summed by the name prefix of their graph layer (layers are named after steps). Managed
bytes are dask's own ``sizeof`` estimates; "unmanaged" is RSS minus managed. Reported: the
snapshot with the largest worker RSS, and the largest managed total. Results go to
``bench-results/profile_cluster_memory.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    MIB,
    RESULTS_DIR,
    emit,
    environment,
    fmt_load,
    make_spec,
    run_watched,
    write_json,
)

DEFAULT_OUTPUT = RESULTS_DIR / "profile_cluster_memory.json"


def _prefix(key) -> str:
    name = str(key[0] if isinstance(key, tuple) else key)
    parts = name.split("-")
    if len(parts) > 1 and parts[1].isalpha():
        return f"{parts[0]}-{parts[1]}"
    return parts[0]


def _snapshot(dask_worker) -> dict:
    """Runs on a worker: its RSS and the bytes it holds per layer prefix."""
    import psutil

    by: dict[str, list[int]] = {}
    tasks = dask_worker.state.tasks
    chunks: dict[str, list] = {}
    for key in list(dask_worker.data.keys()):
        p = _prefix(key)
        entry = by.setdefault(p, [0, 0])
        entry[0] += 1
        ts = tasks.get(key)
        entry[1] += int(ts.nbytes or 0) if ts is not None else 0
        if isinstance(key, tuple) and len(key) > 1:
            chunks.setdefault(p, []).append(key[1])
    return {
        "rss": psutil.Process().memory_info().rss,
        "managed": sum(v[1] for v in by.values()),
        "by_layer": by,
        "chunks": {k: sorted(v)[:60] for k, v in chunks.items()},
        "executing": len(dask_worker.state.executing),
        "ready": len(dask_worker.state.ready),
    }


def run_worker(n_px: int, duration_s: float, n_workers: int) -> dict:
    from distributed import Client, LocalCluster

    import minisim

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None)
    client = Client(cluster)
    spec = make_spec(n_px, duration_s, "rung6")
    rec = minisim.simulate(spec)
    snaps: list[dict] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def poll():
        while not stop.is_set():
            try:
                res = client.run(_snapshot)
            except Exception as err:  # noqa: BLE001 - reporting only
                res = {"error": repr(err)}
            snaps.append({"t": time.perf_counter() - t0, "workers": res})
            stop.wait(1.0)

    tmp = tempfile.mkdtemp(prefix="minisim-prof-cluster-")
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        rec.to_zarr(str(Path(tmp) / "rec.zarr"))
    finally:
        wall = time.perf_counter() - t0
        stop.set()
        poller.join()
        shutil.rmtree(tmp, ignore_errors=True)
    client.close()
    cluster.close()

    def worst(metric):
        best = None
        for s in snaps:
            for addr, w in s["workers"].items():
                if not isinstance(w, dict):
                    continue
                if best is None or w[metric] > best[2][metric]:
                    best = (s["t"], addr, w)
        return None if best is None else {"t": best[0], "worker": best[1], **best[2]}

    timeline = [
        {
            "t": s["t"],
            "rss": [w["rss"] for w in s["workers"].values() if isinstance(w, dict)],
            "error": s["workers"].get("error") if isinstance(s["workers"], dict) else None,
            "managed": [w["managed"] for w in s["workers"].values() if isinstance(w, dict)],
        }
        for s in snaps
    ]
    return {
        "duration_s": duration_s,
        "n_workers": n_workers,
        "n_frames": int(rec.observed.shape[0]),
        "frames_per_chunk": int(max(rec.observed.data.chunks[0])),
        "wall_s": wall,
        "peak_rss_snapshot": worst("rss"),
        "peak_managed_snapshot": worst("managed"),
        "timeline": timeline,
    }


def _print_snapshot(title: str, s: dict | None) -> None:
    if not s:
        return
    print(
        f"  {title} at t={s['t']:.0f} s: RSS {s['rss'] / MIB:.0f} MiB, managed "
        f"{s['managed'] / MIB:.0f} MiB, unmanaged {(s['rss'] - s['managed']) / MIB:.0f} MiB, "
        f"executing {s['executing']}, ready {s['ready']}"
    )
    for k, (n, b) in sorted(s["by_layer"].items(), key=lambda kv: -kv[1][1]):
        if b >= MIB:
            print(f"    {k:<24} {b / MIB:>8.0f} MiB in {n} results; chunks {s['chunks'].get(k)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--durations", type=float, nargs="+", default=[60.0, 150.0])
    parser.add_argument("--n-workers", type=int, default=1)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        emit(run_worker(args.n, args.worker, args.n_workers))
        return 0

    results = []
    for d in args.durations:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", repr(d)]
        cmd += ["--n", str(args.n), "--n-workers", str(args.n_workers)]
        print(f"measuring {d:g} s on {args.n_workers} worker(s) ...", flush=True)
        r = run_watched(cmd)
        if r["status"] != "ok":
            print(f"  {r['status']}: {r['detail']}")
            return 1
        results.append(r)
        print(
            f"{d:g} s ({r['n_frames']} frames, chunks of {r['frames_per_chunk']}): wall "
            f"{r['wall_s']:.0f} s, tree peak {r['watched_tree_peak_rss_bytes'] / MIB:.0f} MiB, "
            f"load {fmt_load(r['load_before'])}"
        )
        _print_snapshot("largest worker RSS", r["peak_rss_snapshot"])
        _print_snapshot("largest managed", r["peak_managed_snapshot"])
    write_json(
        args.output,
        {
            "benchmark": "profile_cluster_memory",
            "spec": f"ladder acquisition at {args.n} px, full rung-6 chain, Sensor(), to_zarr",
            "environment": environment(),
            "results": results,
        },
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
