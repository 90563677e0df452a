"""Shared helpers of the benchmark scripts (standard library only at module level).

The peer's interpreter imports this module too (through ``bench_vs_peer.py`` in worker
mode), so nothing here may import numpy, dask or minisim at module level.

Every measurement runs in a fresh subprocess (``run_watched``), which prints one JSON line;
peak memory is that process's ``getrusage(RUSAGE_SELF).ru_maxrss``. The driver also samples
the resident memory of the whole process tree every 0.2 s (needed for ``dask.distributed``
workers, which are separate processes), records the 1-minute load average before and after,
and kills the measurement if it outgrows a memory limit or the machine runs low on memory.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench-results"
MIB = 2**20
GIB = 2**30

#: Steps of each ladder rung, by class name (resolved in whichever ``minisim`` is imported).
CHAINS: dict[str, tuple[str, ...]] = {
    "rung1": ("PlaceNeurons", "CellActivity", "Composite"),
    "rung2": ("PlaceNeurons", "CellActivity", "CellOptics", "Composite"),
    "rung6": (
        "PlaceNeurons",
        "CellActivity",
        "Bleaching",
        "CellOptics",
        "Composite",
        "Neuropil",
        "BrainMotion",
        "IlluminationProfile",
        "Vignette",
        "Leakage",
        "Sensor",
    ),
}


# --------------------------------------------------------------------------- worker side


def maxrss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


def cpu_s() -> float:
    """User + system CPU time of this process so far (all threads), in seconds."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def current_rss_bytes() -> int | None:
    """Current resident memory of this process (Linux only; None elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def make_spec(
    n_px: int,
    duration_s: float,
    chain: str = "rung6",
    *,
    shot_noise: str | None = None,
    drop: tuple[str, ...] = (),
):
    """The ladder's spec: 200 µm-style acquisition (pitch 8 µm, 8x, 20 fps), seed 1.

    ``shot_noise`` (ours only) is passed to ``Sensor``; ``None`` keeps ``Sensor()``.
    ``drop`` removes steps by class name (e.g. ``("BrainMotion",)``).
    """
    import minisim

    acq = minisim.Acquisition(
        fps=20.0,
        duration_s=duration_s,
        optics=minisim.Optics(magnification=8.0),
        image_sensor=minisim.ImageSensor(n_px_height=n_px, n_px_width=n_px, pixel_pitch_um=8.0),
    )
    steps = []
    for name in CHAINS[chain]:
        if name in drop:
            continue
        cls = getattr(minisim, name)
        if name == "Sensor" and shot_noise is not None:
            steps.append(cls(shot_noise=shot_noise))
        else:
            steps.append(cls())
    return minisim.Spec(acquisition=acq, seed=1, steps=steps)


def emit(result: dict) -> None:
    """Print the worker's result as the last line of its stdout."""
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver side


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def mem_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _tree_rss_bytes(root: int) -> tuple[int, int]:
    """(RSS of ``root``, RSS summed over ``root`` and all its descendants), in bytes."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry}/statm") as fh:
                pages = int(fh.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parent[int(entry)] = int(fields[1])
        rss[int(entry)] = pages * page
    total = 0
    for pid in rss:
        p = pid
        while p and p != root:
            p = parent.get(p, 0)
        if p == root:
            total += rss[pid]
    return rss.get(root, 0), total


def run_watched(
    cmd: list[str],
    *,
    cwd: str | Path = REPO,
    mem_limit_bytes: int = 16 * GIB,
    min_available_bytes: int = GIB,
    timeout_s: float | None = None,
    env: dict | None = None,
) -> dict:
    """Run one worker subprocess, watching its process tree; parse its last stdout line.

    By default the worker imports minisim from this checkout (``PYTHONPATH`` = the
    repository); pass ``env`` to choose otherwise (e.g. without it, for the peer).
    The worker is killed (status ``"did not fit"``) if the tree's resident memory exceeds
    ``mem_limit_bytes`` or the machine's available memory drops below
    ``min_available_bytes`` (the machine is shared: never push it into the OOM killer).
    """
    if env is None:  # this checkout's package, whatever else is installed or on the path
        env = {**os.environ, "PYTHONPATH": str(REPO)}
    out: dict = {
        "load_before": loadavg(),
        "mem_available_before": mem_available_bytes(),
        "package_source_sha256": package_source_hash(),
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(cwd),
        env=env,
        start_new_session=True,
    )
    killed = None
    watched_peak = 0
    watched_tree_peak = 0
    # Drain pipes in the background so a chatty worker never blocks on a full pipe.
    import threading

    chunks: dict[str, list[str]] = {"out": [], "err": []}

    def _drain(stream, key):
        for line in stream:
            chunks[key].append(line)

    threads = [
        threading.Thread(target=_drain, args=(proc.stdout, "out"), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, "err"), daemon=True),
    ]
    for t in threads:
        t.start()
    while proc.poll() is None:
        own, tree = _tree_rss_bytes(proc.pid)
        watched_peak = max(watched_peak, own)
        watched_tree_peak = max(watched_tree_peak, tree)
        avail = mem_available_bytes()
        if tree > mem_limit_bytes:
            killed = (
                f"resident memory {tree / MIB:.0f} MiB over the "
                f"{mem_limit_bytes / MIB:.0f} MiB limit"
            )
        elif avail is not None and avail < min_available_bytes:
            killed = (
                f"machine memory available fell to {avail / MIB:.0f} MiB "
                f"(process tree at {tree / MIB:.0f} MiB)"
            )
        elif timeout_s is not None and time.perf_counter() - t0 > timeout_s:
            killed = f"timeout after {timeout_s:g} s"
        if killed:
            try:
                os.killpg(proc.pid, 9)  # its own session: the worker and its children
            except ProcessLookupError:
                pass
            break
        time.sleep(0.2)
    proc.wait()
    for t in threads:
        t.join(timeout=5)
    stdout, stderr = "".join(chunks["out"]), "".join(chunks["err"])
    out["subprocess_wall_s"] = time.perf_counter() - t0
    out["load_after"] = loadavg()
    out["watched_peak_rss_bytes"] = watched_peak
    out["watched_tree_peak_rss_bytes"] = watched_tree_peak
    if killed:
        return {**out, "status": "did not fit", "detail": killed}
    if proc.returncode != 0:
        tail = (stdout + stderr).strip().splitlines()[-15:]
        sys.stderr.write("\n".join(tail) + "\n")
        return {**out, "status": "failed", "detail": f"exit {proc.returncode}: {tail[-1:]}"}
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**out, "status": "ok", **result}


def environment(**extra) -> dict:
    def _version(mod: str) -> str | None:
        try:
            return __import__(mod).__version__
        except Exception:  # reporting only
            return None

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "minisim"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, ""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "mem_total_gib": _mem_total_gib(),
        "numpy": _version("numpy"),
        "dask": _version("dask"),
        "minisim": _version("minisim"),
        "git_commit": commit,
        "package_tree_dirty": bool(dirty),
        "package_source_sha256": package_source_hash(),
        "ours_python": sys.executable,
        **extra,
    }


def package_source_hash() -> str:
    """sha256 over ``minisim/**/*.py`` (the package is edited concurrently: this pins the
    exact source a number was measured on, committed or not)."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((REPO / "minisim").rglob("*.py")):
        h.update(str(path.relative_to(REPO)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            return round(int(fh.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def fmt_load(load: list[float] | None) -> str:
    return "-" if not load else f"{load[0]:.1f}"


def wait_for_quiet(max_load: float | None, max_wait_s: float = 120.0) -> float:
    """Wait (at most ``max_wait_s``) until the 1-minute load average is below ``max_load``.

    The machine is shared; waiting for a quieter moment makes side-by-side numbers more
    comparable. Returns the seconds waited (0 if ``max_load`` is None).
    """
    if not max_load:
        return 0.0
    t0 = time.perf_counter()
    while os.getloadavg()[0] >= max_load and time.perf_counter() - t0 < max_wait_s:
        time.sleep(5.0)
    return time.perf_counter() - t0


def add_quiet_args(parser) -> None:
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=None,
        help="before each measurement wait until the 1-min load average is below this",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=120.0, help="longest wait for --quiet-load, s"
    )
