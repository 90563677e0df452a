"""Chunk policy: how many frames (or cells) go into one task."""

from __future__ import annotations

from collections.abc import Mapping

#: Aim for about this much float32 work per chunk (one 512² float32 frame is 1 MiB).
TARGET_CHUNK_BYTES = 64 * 2**20


def split_evenly(total: int, size: int) -> tuple[int, ...]:
    """``total`` items in runs of ``size``, the last run shorter: (size, size, …, rest)."""
    if total == 0:
        return (0,)
    size = max(1, min(size, total))
    full, rest = divmod(total, size)
    return (size,) * full + ((rest,) if rest else ())


def items_per_chunk(item_bytes: int, target_bytes: int = TARGET_CHUNK_BYTES) -> int:
    """How many items of ``item_bytes`` fit in the target chunk size (at least one)."""
    return max(1, target_bytes // max(1, item_bytes))


def normalize_chunks(chunks, n_frames: int, frame_bytes: int) -> tuple[int, ...]:
    """The frame chunks of a recording from the user's ``chunks=`` argument.

    ``None`` or ``"auto"`` sizes chunks to about :data:`TARGET_CHUNK_BYTES`; an int, or a
    mapping ``{"frame": n}``, asks for ``n`` frames per chunk; ``-1`` means one chunk; a
    tuple gives every chunk's length explicitly (dask style).
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
        return split_evenly(n_frames, items_per_chunk(frame_bytes))
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
