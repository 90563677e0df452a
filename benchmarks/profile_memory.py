"""Where the memory of a streamed full-chain computation goes: bytes held per graph layer.

Usage::

    python benchmarks/profile_memory.py                      # 512x512 px, 30 s and 90 s
    python benchmarks/profile_memory.py --durations 60 --until neuropil

For each duration a fresh subprocess builds the ladder's full rung-6 chain (``Sensor()``,
Poisson) at N×N px and computes ``rec.observed.max()`` on the threaded scheduler under a
``dask.callbacks.Callback`` (or, with ``--target zarr``, the Zarr write of
``Recording.to_zarr`` into a temporary store) that, after every task, sums the ``nbytes`` of every result the
scheduler still holds (its ``cache``), grouped by the name prefix of the graph layer
(layers are named after steps). Reported: the peak of the held total, the held bytes and
number of chunks per layer at that peak, the static order in which ``dask.order`` runs the
frame-sized layers (runs of consecutive tasks), and ``ru_maxrss``. A held total that grows
with the duration means some step's frame-sized outputs wait for a whole-recording task.
Results go to ``bench-results/profile_memory.json``.
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
    emit,
    environment,
    fmt_load,
    make_spec,
    maxrss_bytes,
    run_watched,
    write_json,
)

DEFAULT_OUTPUT = RESULTS_DIR / "profile_memory.json"


def _prefix(key) -> str:
    name = str(key[0] if isinstance(key, tuple) else key)
    parts = name.split("-")
    # keep a sub-layer word ("neuropil-envelopes"), drop tokens
    if len(parts) > 1 and parts[1].isalpha():
        return f"{parts[0]}-{parts[1]}"
    return parts[0]


def _order_runs(x) -> list[list]:
    import dask
    from dask.order import order

    (xo,) = dask.optimize(x)
    dsk = dict(xo.__dask_graph__())
    prio = order(dsk)
    runs: list[list] = []
    for k in sorted(dsk, key=lambda k: prio[k]):
        p = _prefix(k)
        if runs and runs[-1][0] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return runs


def _blocked_on(state) -> dict[str, dict[str, int]]:
    """For results held of at least 1 MiB, by layer: what their pending consumers wait for
    (layer prefix -> number of unfinished dependencies), and the held chunk indices."""
    out: dict[str, dict] = {}
    for k, v in state["cache"].items():
        if int(getattr(v, "nbytes", 0) or 0) < MIB:
            continue
        entry = out.setdefault(_prefix(k), {"chunks": [], "waiting_for": {}})
        if isinstance(k, tuple) and len(k) > 1:
            entry["chunks"].append(k[1])
        for dep in state["waiting_data"].get(k, ()):
            for missing in state["waiting"].get(dep, ()):
                p = _prefix(missing)
                entry["waiting_for"][p] = entry["waiting_for"].get(p, 0) + 1
            if dep in state["running"]:
                entry["waiting_for"]["(consumer running)"] = (
                    entry["waiting_for"].get("(consumer running)", 0) + 1
                )
    for entry in out.values():
        entry["chunks"].sort()
    return out


def run_worker(n_px: int, duration_s: float, until: str | None, target: str = "max") -> dict:
    from dask.callbacks import Callback

    import minisim

    spec = make_spec(n_px, duration_s, "rung6")
    rec = minisim.simulate(spec, until=until)
    obs = rec.observed
    tmp = None
    if target == "zarr":
        import tempfile

        from minisim.io.zarr_store import write_recording_lazily

        tmp = tempfile.mkdtemp(prefix="minisim-prof-mem-")
        x = write_recording_lazily(rec, str(Path(tmp) / "rec.zarr"))
    else:
        x = obs.data.max()

    peak = {"total": 0, "by_layer": {}, "chunks_by_layer": {}, "at_task": 0}
    n_done = [0]

    class HeldBytes(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            n_done[0] += 1
            by: dict[str, int] = {}
            count: dict[str, int] = {}
            for k, v in state["cache"].items():
                p = _prefix(k)
                by[p] = by.get(p, 0) + int(getattr(v, "nbytes", 0) or 0)
                count[p] = count.get(p, 0) + 1
            total = sum(by.values())
            if total > peak["total"]:
                peak.update(total=total, by_layer=by, chunks_by_layer=count, at_task=n_done[0])
                peak["blocked_on"] = _blocked_on(state)

    t0 = time.perf_counter()
    with HeldBytes():
        x.compute()
    compute_s = time.perf_counter() - t0
    if tmp is not None:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "duration_s": duration_s,
        "until": until,
        "target": target,
        "shape": [int(s) for s in obs.shape],
        "frames_per_chunk": int(max(obs.data.chunks[0])),
        "n_frame_chunks": len(obs.data.chunks[0]),
        "compute_s": compute_s,
        "n_tasks_run": n_done[0],
        "held_peak_bytes": peak["total"],
        "held_peak_by_layer_bytes": dict(sorted(peak["by_layer"].items(), key=lambda kv: -kv[1])),
        "held_peak_chunks_by_layer": peak["chunks_by_layer"],
        "held_peak_at_task": peak["at_task"],
        "held_peak_blocked_on": peak.get("blocked_on", {}),
        "peak_rss_bytes": maxrss_bytes(),
        "static_order_runs": _order_runs(x),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--durations", type=float, nargs="+", default=[30.0, 90.0])
    parser.add_argument("--until", default=None, help="stop after this step")
    parser.add_argument(
        "--target",
        choices=["max", "zarr"],
        default="max",
        help="what to compute: observed.max() or the Zarr write (to a temporary store)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        emit(run_worker(args.n, args.worker, args.until, args.target))
        return 0

    results = []
    for d in args.durations:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", repr(d)]
        cmd += ["--n", str(args.n), "--target", args.target]
        cmd += ["--until", args.until] if args.until else []
        print(f"measuring {d:g} s ...", flush=True)
        r = run_watched(cmd)
        if r["status"] != "ok":
            print(f"  {r['status']}: {r['detail']}")
            return 1
        results.append(r)
        print(
            f"\n{d:g} s ({r['shape'][0]} frames, {r['n_frame_chunks']} chunks of "
            f"{r['frames_per_chunk']}): held peak {r['held_peak_bytes'] / MIB:.0f} MiB at task "
            f"{r['held_peak_at_task']}/{r['n_tasks_run']}, ru_maxrss "
            f"{r['peak_rss_bytes'] / MIB:.0f} MiB, max() {r['compute_s']:.1f} s, "
            f"load {fmt_load(r['load_before'])}"
        )
        for k, v in r["held_peak_by_layer_bytes"].items():
            if v >= MIB:
                n = r["held_peak_chunks_by_layer"][k]
                blocked = r["held_peak_blocked_on"].get(k, {})
                print(
                    f"  {k:<24} {v / MIB:>8.0f} MiB in {n} results; chunks "
                    f"{blocked.get('chunks')}; consumers wait for {blocked.get('waiting_for')}"
                )
    print("\nstatic task order (layer x consecutive tasks), last duration:")
    print("  " + " ".join(f"{p}x{n}" for p, n in results[-1]["static_order_runs"]))
    write_json(
        args.output,
        {
            "benchmark": "profile_memory",
            "spec": f"ladder acquisition at {args.n} px, full rung-6 chain, Sensor()",
            "until": args.until,
            "environment": environment(),
            "results": results,
        },
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
