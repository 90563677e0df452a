"""Chunk policy: how many frames (or cells) go into one task.

Automatic frame chunks follow two rules, in this order:

* **size** — a chunk's pixel work fits dask's ``array.chunk-size``, counting
  :data:`FRAME_COPIES` float32 canvas frames per frame (the pixel chain holds the tissue
  movie and its shifted crop at once; the stored dtype does not matter), so
  ``dask.config.set({"array.chunk-size": "32MiB"})`` bounds memory the way it does for any
  dask array. At dask's default of 128 MiB a 512 × 512 px chunk holds 56 frames: a 2-thread
  Zarr write of the full chain peaks at 1.1 GiB, where counting one copy (113 frames)
  peaked at 1.4 GiB;
* **parallelism** — at least two chunks per worker thread when the recording has
  :data:`MIN_FRAMES_PER_CHUNK` frames for each, and a chunk count that is a multiple of
  the thread count, so the last round of tasks keeps every core busy.

Chunks are always regular (all equal but a shorter last one), which Zarr requires, and
balanced: ``n`` chunks of ``ceil(frames / n)`` frames. Results never depend on the
chunking; only the speed and the memory do.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping

import dask
from dask.utils import parse_bytes

#: The chunk size used when dask's ``array.chunk-size`` cannot be read.
TARGET_CHUNK_BYTES = 128 * 2**20
#: Float32 canvas frames the pixel chain holds per frame of its chunk, as counted against
#: ``array.chunk-size``.
FRAME_COPIES = 2
#: Chunks per worker thread the automatic policy aims for (so no core idles at the end).
CHUNKS_PER_THREAD = 2
#: Fewer frames than this per chunk is not worth a task of its own (per-task overhead,
#: and the scan blocks of 256 frames would be recomputed by too many chunks).
MIN_FRAMES_PER_CHUNK = 32


def split_evenly(total: int, size: int) -> tuple[int, ...]:
    """``total`` items in runs of ``size``, the last run shorter: (size, size, …, rest)."""
    if total == 0:
        return (0,)
    size = max(1, min(size, total))
    full, rest = divmod(total, size)
    return (size,) * full + ((rest,) if rest else ())


def target_chunk_bytes() -> int:
    """Bytes of work per chunk: dask's ``array.chunk-size`` setting (128 MiB by default)."""
    value = dask.config.get("array.chunk-size", None)
    if value is None:
        return TARGET_CHUNK_BYTES
    return int(parse_bytes(value) if isinstance(value, str) else value)


def items_per_chunk(item_bytes: int, target_bytes: int | None = None) -> int:
    """How many items of ``item_bytes`` fit in the target chunk size (at least one)."""
    target = target_chunk_bytes() if target_bytes is None else target_bytes
    return max(1, target // max(1, item_bytes))


def worker_threads() -> int:
    """Threads the scheduler in force runs tasks on.

    A ``distributed`` client set as default counts all its workers' threads; otherwise
    dask's ``num_workers`` setting, else the CPUs this process may use.
    """
    if "distributed" in sys.modules:  # never import it just to ask
        try:
            from distributed import default_client

            return max(1, sum(default_client().nthreads().values()))
        except (ValueError, OSError):
            pass  # no client: the local schedulers apply
    configured = dask.config.get("num_workers", None)
    if configured:
        return max(1, int(configured))
    from dask.system import CPU_COUNT

    return max(1, CPU_COUNT or os.cpu_count() or 1)


def auto_frame_chunks(
    n_frames: int, frame_bytes: int, *, target_bytes: int | None = None, threads: int | None = None
) -> tuple[int, ...]:
    """Balanced, regular frame chunks that fit the chunk size and keep every thread busy.

    ``frame_bytes`` is one float32 canvas frame; :data:`FRAME_COPIES` of it count per frame.

    ``n`` chunks of ``ceil(n_frames / n)`` frames, where ``n`` is the smallest multiple of
    the thread count that is at least the chunks the size needs and, while every chunk
    keeps :data:`MIN_FRAMES_PER_CHUNK` frames, at least :data:`CHUNKS_PER_THREAD` per thread.
    """
    if n_frames <= 0:
        return (0,)
    threads = worker_threads() if threads is None else max(1, threads)
    by_size = math.ceil(n_frames / items_per_chunk(FRAME_COPIES * frame_bytes, target_bytes))
    wanted = max(by_size, CHUNKS_PER_THREAD * threads)
    wanted = math.ceil(wanted / threads) * threads  # whole rounds: no core idles at the end
    # Never cut below the minimum chunk length, unless the size itself demands it.
    n = max(by_size, min(wanted, n_frames // MIN_FRAMES_PER_CHUNK), 1)
    return split_evenly(n_frames, math.ceil(n_frames / n))


def normalize_chunks(chunks, n_frames: int, frame_bytes: int) -> tuple[int, ...]:
    """The frame chunks of a recording from the user's ``chunks=`` argument.

    ``None`` or ``"auto"`` applies :func:`auto_frame_chunks` (dask's ``array.chunk-size``,
    two chunks per thread); an int, or a mapping ``{"frame": n}``, asks for ``n`` frames
    per chunk; ``-1`` means one chunk; a tuple gives every chunk's length explicitly (dask
    style).
    """
    if isinstance(chunks, Mapping):
        unknown = set(chunks) - {"frame"}
        if unknown:
            raise ValueError(
                f"chunks={dict(chunks)!r}: only the 'frame' dimension is chunked "
                f"(whole frames per chunk); remove {sorted(unknown)}"
            )
        chunks = chunks.get("frame", None)
    if chunks is None or chunks == "auto":
        return auto_frame_chunks(n_frames, frame_bytes)
    if isinstance(chunks, (tuple, list)):
        sizes = tuple(chunks)
        if not all(isinstance(c, int) and c >= 1 for c in sizes) or sum(sizes) != n_frames:
            raise ValueError(
                f"chunks={sizes!r}: explicit frame chunks must be positive ints summing to "
                f"the {n_frames} frames of the recording"
            )
        return sizes
    if isinstance(chunks, bool) or not isinstance(chunks, int):
        raise ValueError(
            f"chunks={chunks!r}: frames per chunk must be a positive int, -1 (one chunk), "
            "'auto', or {'frame': n}"
        )
    if chunks == -1:
        return (n_frames,)
    if chunks < 1:
        raise ValueError(f"chunks={chunks}: frames per chunk must be ≥ 1 (or -1 for one chunk)")
    return split_evenly(n_frames, chunks)
