"""Response times of the studio and the notebooks' frame previews.

Usage::

    python benchmarks/bench_explore.py            # 20 s and 30 min recordings
    python benchmarks/bench_explore.py --quick    # 20 s and 5 min

Two measurements on the examples ladder's full chain (1 µm/px, 20 fps, Poisson sensor):

* **frame change at 512 px**: a :class:`minisim.explore.FramePreview` of a 512×512 field;
  after the first frame (which also computes the small whole-recording work: traces,
  trajectory, focal plane), the time to get another frame at a random position and draw
  it as the studio does (PNG with ground-truth outlines). Target: < 0.5 s.
* **physics change on a 256 px preview**: a new spec (here: a new NA, a new activity
  level, a new neuropil amplitude, in turn) seen through a 256×256 window — the time to
  build its lazy recording, compute the first frame, its outlines and draw it. Target: < 2 s.

Medians and 90th percentiles are printed and written to
``bench-results/explore.json``. The machine's load average is reported: other processes
competing for the cores inflate every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from minisim import SpecWarning
from minisim.cli import demo_spec
from minisim.explore import FramePreview, activity_at_level
from minisim.explore.render import frame_png

RESULTS = Path(__file__).resolve().parents[1] / "bench-results"


def draw(preview: FramePreview, t: int) -> None:
    frame = preview.frame(t)
    frame_png(frame, vmax=255, cells=preview.cells(), shift=preview.shift(t))


def frame_changes(duration_s: float, n: int, rng) -> dict:
    spec = demo_spec(duration_s, 512, seed=1)
    start = time.perf_counter()
    preview = FramePreview(spec)
    build = time.perf_counter() - start
    start = time.perf_counter()
    draw(preview, 0)
    first = time.perf_counter() - start
    times = []
    for t in rng.integers(0, preview.n_frames, n):
        start = time.perf_counter()
        draw(preview, int(t))
        times.append(time.perf_counter() - start)
    return {
        "duration_s": duration_s,
        "frames": preview.n_frames,
        "graph_build_s": build,
        "first_frame_s": first,
        "frame_change_median_s": statistics.median(times),
        "frame_change_p90_s": float(np.percentile(times, 90)),
    }


def physics_changes(duration_s: float) -> dict:
    base = demo_spec(duration_s, 512, seed=1)
    variants = []
    for na in (0.4, 0.5):
        acq = base.acquisition.model_copy(
            update={"optics": base.acquisition.optics.model_copy(update={"na": na})}
        )
        variants.append(base.model_copy(update={"acquisition": acq}))
    for level in (0.3, 0.8):
        steps = [activity_at_level(level) if s.kind == "cell_activity" else s for s in base.steps]
        variants.append(base.model_copy(update={"steps": tuple(steps)}))
    for amplitude in (0.3, 0.9):
        steps = [s.model_copy(update={"amplitude": amplitude}) if s.kind == "neuropil" else s
                 for s in base.steps]  # fmt: skip
        variants.append(base.model_copy(update={"steps": tuple(steps)}))
    times = []
    for spec in variants:
        start = time.perf_counter()
        preview = FramePreview(spec, window_px=256)
        draw(preview, preview.n_frames // 2)
        times.append(time.perf_counter() - start)
    return {
        "duration_s": duration_s,
        "window_px": 256,
        "physics_change_median_s": statistics.median(times),
        "physics_change_max_s": max(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s and 5 min only")
    args = parser.parse_args()
    warnings.simplefilter("ignore", SpecWarning)
    rng = np.random.default_rng(0)
    durations = (20.0, 300.0) if args.quick else (20.0, 1800.0)
    load_before = os.getloadavg()[0]
    frames = [frame_changes(d, 12, rng) for d in durations]
    physics = [physics_changes(d) for d in durations]
    load_after = os.getloadavg()[0]
    print(f"load average (1 min): {load_before:.1f} before, {load_after:.1f} after; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print("frame change at 512 px (target < 0.5 s)")
    for r in frames:
        print(f"  {r['duration_s']:7.0f} s ({r['frames']:6d} frames): graph {r['graph_build_s']:.2f} s, "
              f"first frame {r['first_frame_s']:.2f} s, then median {r['frame_change_median_s']:.3f} s "
              f"(p90 {r['frame_change_p90_s']:.3f} s)")  # fmt: skip
    print("physics change on a 256 px preview window (target < 2 s)")
    for r in physics:
        print(f"  {r['duration_s']:7.0f} s: median {r['physics_change_median_s']:.2f} s, "
              f"max {r['physics_change_max_s']:.2f} s")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "explore.json"
    out.write_text(json.dumps({"frame_change": frames, "physics_change": physics,
                               "load": [load_before, load_after]}, indent=2))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
