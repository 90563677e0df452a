"""Where the memory of ``simulate_video`` goes: chunk arrival order, buffer, RSS timeline.

Usage::

    python benchmarks/profile_video.py                       # 200x200 px, 60 s and 600 s

A fresh subprocess per duration runs ``simulate_video(spec, "x.avi", progress=False)`` on
the ladder's full rung-6 chain (``Sensor()``) while

* a thread samples this process's resident memory every 20 ms;
* the encoder's ``__setitem__`` (the ``da.store`` target of ``minisim.io.video``) is wrapped
  (monkeypatched in this process only, the package is untouched) to log, per arriving
  chunk: its first frame, the chunks waiting in the reorder buffer after it, the RSS, and
  the time spent in the call (the uint8 conversion and the encoding, under the lock).

Reported: peak RSS (``ru_maxrss``), the largest reorder backlog (chunks and MiB), chunk
arrival order, and the RSS before/after the worst ``__setitem__``. The store runs on
``scheduler="threads"`` (2 threads here). Results go to ``bench-results/profile_video.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    MIB,
    RESULTS_DIR,
    current_rss_bytes,
    emit,
    environment,
    fmt_load,
    make_spec,
    maxrss_bytes,
    run_watched,
    write_json,
)

DEFAULT_OUTPUT = RESULTS_DIR / "profile_video.json"


def run_worker(n_px: int, duration_s: float) -> dict:
    import minisim
    from minisim.io import video

    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    t_start = time.perf_counter()

    def sample():
        while not stop.is_set():
            samples.append((time.perf_counter() - t_start, current_rss_bytes() or 0))
            time.sleep(0.02)

    events: list[dict] = []
    original = video._OrderedEncoder.__setitem__

    def logged(self, key, block):
        t0 = time.perf_counter()
        rss0 = current_rss_bytes()
        start = key[0].start or 0
        block_bytes = int(getattr(block, "nbytes", 0))
        original(self, key, block)
        events.append(
            {
                "t": t0 - t_start,
                "start": start,
                "block_bytes": block_bytes,
                "block_dtype": str(getattr(block, "dtype", "")),
                "pending_chunks": len(self.pending),
                "pending_bytes": sum(v.nbytes for v in self.pending.values()),
                "next_frame": self.next_frame,
                "rss_before": rss0,
                "rss_after": current_rss_bytes(),
                "call_s": time.perf_counter() - t0,
            }
        )

    video._OrderedEncoder.__setitem__ = logged
    spec = make_spec(n_px, duration_s, "rung6")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        minisim.simulate_video(spec, str(Path(tmp) / "x.avi"), progress=False)
        wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    rec = minisim.simulate(spec)
    peak_t, peak_rss = max(samples, key=lambda s: s[1])
    return {
        "duration_s": duration_s,
        "n_frames": int(rec.observed.shape[0]),
        "frames_per_chunk": int(max(rec.observed.data.chunks[0])),
        "n_frame_chunks": len(rec.observed.data.chunks[0]),
        "wall_s": wall,
        "peak_rss_bytes": maxrss_bytes(),
        "sampled_peak_rss_bytes": peak_rss,
        "sampled_peak_t": peak_t,
        "arrival_order": [e["start"] for e in events],
        "max_pending_chunks": max(e["pending_chunks"] for e in events),
        "max_pending_bytes": max(e["pending_bytes"] for e in events),
        "max_setitem_rss_jump_bytes": max(
            (e["rss_after"] or 0) - (e["rss_before"] or 0) for e in events
        ),
        "events": events,
        "rss_timeline": samples[:: max(1, len(samples) // 400)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--durations", type=float, nargs="+", default=[60.0, 600.0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        emit(run_worker(args.n, args.worker))
        return 0

    results = []
    for d in args.durations:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", repr(d)]
        cmd += ["--n", str(args.n)]
        print(f"measuring {d:g} s ...", flush=True)
        r = run_watched(cmd)
        if r["status"] != "ok":
            print(f"  {r['status']}: {r['detail']}")
            return 1
        results.append(r)
        ev = r["events"]
        print(
            f"{d:g} s: {r['n_frames']} frames in {r['n_frame_chunks']} chunks of "
            f"{r['frames_per_chunk']}, wall {r['wall_s']:.1f} s, ru_maxrss "
            f"{r['peak_rss_bytes'] / MIB:.0f} MiB (sampled peak "
            f"{r['sampled_peak_rss_bytes'] / MIB:.0f} MiB at {r['sampled_peak_t']:.1f} s), "
            f"load {fmt_load(r['load_before'])}"
        )
        print(
            f"  block dtype {ev[0]['block_dtype']}, {ev[0]['block_bytes'] / MIB:.0f} MiB/chunk; "
            f"reorder buffer max {r['max_pending_chunks']} chunks "
            f"({r['max_pending_bytes'] / MIB:.0f} MiB); largest RSS jump inside one "
            f"__setitem__ {r['max_setitem_rss_jump_bytes'] / MIB:.0f} MiB"
        )
        print(f"  arrival order (first frame of each chunk): {r['arrival_order'][:40]}")
    write_json(
        args.output,
        {
            "benchmark": "profile_video",
            "spec": f"ladder acquisition at {args.n} px, full rung-6 chain, Sensor()",
            "environment": environment(),
            "results": results,
        },
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
