"""The lazy machinery: immutable scenes, keyed random streams, chunk policy, scans.

Nothing here knows any physics; steps bring the kernels, the engine wires them into
dask graphs whose results do not depend on chunking or scheduler.
"""

from .chunks import TARGET_CHUNK_BYTES, auto_frame_chunks, normalize_chunks, split_evenly
from .graph import as_delayed, constant, map_ranges, recipe, recut, take_frames
from .rng import stable_id, stream
from .scan import SCAN_BLOCK, ScanOutput, scan
from .scene import Scene
from .sparse import Footprints

__all__ = [
    "SCAN_BLOCK",
    "TARGET_CHUNK_BYTES",
    "Footprints",
    "ScanOutput",
    "Scene",
    "as_delayed",
    "auto_frame_chunks",
    "constant",
    "map_ranges",
    "normalize_chunks",
    "recipe",
    "recut",
    "scan",
    "split_evenly",
    "stable_id",
    "stream",
    "take_frames",
]
