"""Carried-state recurrences as a scan over a fixed grid of frame blocks.

Block k starts from the exact state block k−1 ended with. The grid is fixed here, not by
the user's chunks, so a recurrence (calcium kernel, activity gate, drifts, motion) gives
the same numbers however the recording is later chunked; outputs are rechunked to the
consumer's chunks afterwards, which moves values but never recomputes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import getitem

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from .chunks import split_evenly
from .graph import _Constant

#: Frames per scan block. Part of the output contract: changing it changes results.
SCAN_BLOCK = 1024


@dataclass(frozen=True)
class ScanOutput:
    """One per-block output of a scan.

    ``shape`` has ``None`` where the frame axis goes, e.g. ``(n_cells, None)`` for a
    (cell, frame) trace or ``(None, 2)`` for per-frame (dy, dx).
    """

    name: str
    shape: tuple
    dtype: object

    @property
    def frame_axis(self) -> int:
        return self.shape.index(None)


def scan(
    name: str,
    step,
    init,
    n_frames: int,
    outputs: Sequence[ScanOutput],
    sequences: Sequence[tuple[da.Array, int]] = (),
    constants: Sequence = (),
    block: int = SCAN_BLOCK,
) -> list[da.Array]:
    """Run ``step`` over consecutive frame blocks, carrying its state.

    Parameters
    ----------
    name : str
        Unique, deterministic prefix for the graph keys.
    step : callable
        ``step(state, block_index, start, stop, *sequence_blocks, *constants)`` returning
        ``(new_state, out_0, out_1, ...)``, one array per entry of ``outputs``.
    init : tuple or object
        The state before frame 0: a task tuple ``(func, *args)`` computed lazily (args
        may be :func:`constant` wrappers), or a plain value.
    n_frames : int
        Length of the frame axis.
    outputs : sequence of ScanOutput
        What each block returns besides the state.
    sequences : sequence of (dask array, axis)
        Inputs with a frame axis; block k of each is passed to ``step``.
    constants : sequence
        Extra arguments (wrap large ones with :func:`constant`).
    block : int
        Frames per block (the fixed internal grid).

    Returns
    -------
    list of dask arrays, one per output, chunked on the block grid along the frame axis.
    """
    grid = split_evenly(n_frames, block)
    bounds = np.concatenate([[0], np.cumsum(grid)]).astype(int)
    state_name = f"{name}-state"
    dsk: dict = {}
    init_key = (f"{name}-init",)
    if isinstance(init, tuple) and init and callable(init[0]):
        func, *init_args = init
        dsk[init_key] = (func, *_register(init_args, dsk))
    else:
        dsk[init_key] = init
    consts = _register(constants, dsk)
    aligned = []
    for arr, axis in sequences:
        axis = axis % arr.ndim
        arr = arr.rechunk(tuple(grid if a == axis else (arr.shape[a],) for a in range(arr.ndim)))
        aligned.append((arr, axis))
    previous = init_key
    for k in range(len(grid)):
        seq_keys = [
            (arr.name, *(k if a == axis else 0 for a in range(arr.ndim))) for arr, axis in aligned
        ]
        key = (state_name, k)
        dsk[key] = (
            _step_block,
            step,
            previous,
            k,
            int(bounds[k]),
            int(bounds[k + 1]),
            *seq_keys,
            *consts,
        )
        previous = key
    arrays = []
    for j, out in enumerate(outputs):
        out_name = f"{name}-{out.name}"
        layer = dict(dsk)
        for k in range(len(grid)):
            index = tuple(k if a == out.frame_axis else 0 for a in range(len(out.shape)))
            layer[(out_name, *index)] = (getitem, (state_name, k), j + 1)
        graph = HighLevelGraph.from_collections(
            out_name, layer, dependencies=[a for a, _ in aligned]
        )
        chunks = tuple(grid if s is None else (int(s),) for s in out.shape)
        meta = np.empty((0,) * len(out.shape), out.dtype)
        arrays.append(da.Array(graph, out_name, chunks, dtype=out.dtype, meta=meta))
    return arrays


def _register(values, dsk) -> list:
    args = []
    for v in values:
        if isinstance(v, _Constant):
            dsk[v.key] = v.value
            args.append(v.key)
        else:
            args.append(v)
    return args


def _step_block(step, previous, k, start, stop, *args):
    # Block 0 receives the bare initial state; later blocks the tuple of the block before.
    state = previous[0] if k > 0 else previous
    return step(state, k, start, stop, *args)
