"""Let glibc's malloc reuse the memory of freed chunk-sized arrays instead of remapping it.

glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a
fresh ``mmap`` and returns it with ``munmap`` on free. A 512 × 512 px chunk of 50 float32
frames is 52 MiB, so each of the dozen chunk-sized arrays a chunk's kernels produce
arrived as fresh pages that the operating system zero-filled and mapped in 4 KiB at a time:
about a fifth of the full chain's CPU time went to the kernel (``sys`` time). Raising the
mmap threshold (and keeping freed memory in the heap up to the trim threshold, with one
heap per core) lets malloc hand the same, already-mapped pages to the next chunk. Peak
memory stays the same (the pages are reused, not added: a 5-minute 512 px Zarr write
peaked at 0.95–0.97 GB either way); the process keeps up to the trim threshold of freed memory
mapped per heap between computations.

Malloc's settings belong to the process, so the library never changes them: the
``minisim`` command applies this once in its own process, and a Python user who wants it
calls :func:`reuse_freed_arrays` (or sets the equivalent ``MALLOC_*`` environment
variables, see ``docs/performance.md``). It acts only on Linux with glibc, and never when
the user chose malloc settings (any ``MALLOC_*`` environment variable or a
``glibc.malloc`` tunable) or set ``MINISIM_SYSTEM_MALLOC=1``. Bytes of every result are
unaffected: this changes where arrays live, not what is computed in them.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

#: Allocations below this come from the heap (reused); glibc's default tops out at 32 MiB.
MMAP_THRESHOLD = 1 << 30
#: Freed memory kept mapped at the top of a heap before it is returned to the system.
TRIM_THRESHOLD = 64 << 20
#: Extra heap grabbed per growth, so a growing heap does not fault page by page.
TOP_PAD = 16 << 20

_LOCK = threading.Lock()
_applied: bool | None = None


def reuse_freed_arrays() -> bool:
    """Tune glibc malloc once per process for chunk-sized arrays; True if tuned."""
    global _applied
    with _LOCK:
        if _applied is None:
            _applied = _tune()
        return _applied


def _tune() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("MINISIM_SYSTEM_MALLOC") == "1":
        return False
    if any(name.startswith("MALLOC_") for name in os.environ) or "glibc.malloc" in os.environ.get(
        "GLIBC_TUNABLES", ""
    ):
        return False  # the user tuned malloc themselves
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_TOP_PAD, TOP_PAD),
        # One heap per core, not glibc's eight: each keeps up to the trim threshold of freed
        # memory, and more heaps than threads that run at once only add to it.
        (_M_ARENA_MAX, max(2, os.cpu_count() or 1)),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)
