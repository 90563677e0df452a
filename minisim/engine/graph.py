"""Graph building blocks: blockwise maps that pass absolute index ranges to kernels.

Kernels receive ``(start, stop)`` of the block along its leading axis (absolute frame or
cell indices), so keyed random streams and carried state never depend on how the user
chunked the recording. Small constants (footprint patches, per-cell parameters) live under
one graph key each, so the pickled graph does not repeat them per task.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph


class _Constant:
    """A small object stored once in a graph and referenced by key from many tasks."""

    def __init__(self, value, key):
        self.value = value
        self.key = key


def constant(value, prefix: str = "const") -> _Constant:
    """Wrap a small value so :func:`map_ranges` stores it under a single graph key.

    A ``dask.delayed`` value is returned as is: it is already a single graph node.
    """
    if isinstance(value, Delayed):
        return value
    return _Constant(value, (f"{prefix}-{tokenize(value)}",))


def _offsets(chunks: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(chunks)]).astype(int)


def map_ranges(
    name: str,
    func,
    chunks: Sequence[int],
    tail_shape: Sequence[int],
    dtype,
    inputs: Sequence[tuple[da.Array, int]] = (),
    constants: Sequence = (),
) -> da.Array:
    """A dask array whose block k is ``func(start_k, stop_k, *input_blocks, *constants)``.

    Parameters
    ----------
    name : str
        Unique, deterministic layer name (it is the graph layer's name in task graphs).
    func : callable
        Module-level kernel returning an array of shape ``(stop − start, *tail_shape)``.
    chunks : sequence of int
        Block lengths along the leading axis.
    tail_shape : sequence of int
        Shape of the remaining axes; each is a single chunk.
    dtype : numpy dtype
        Result dtype.
    inputs : sequence of (dask array, axis)
        Arrays aligned with the leading axis along ``axis``; they are rechunked so block k
        of the input covers exactly the same range, with every other axis in one chunk.
    constants : sequence
        Extra arguments; values wrapped by :func:`constant` are stored once, and
        ``dask.delayed`` values become dependencies (their result is passed).
    """
    chunks = tuple(int(c) for c in chunks)
    bounds = _offsets(chunks)
    dsk: dict = {}
    deps = []
    aligned = []
    for arr, axis in inputs:
        axis = axis % arr.ndim
        target = tuple(chunks if a == axis else (arr.shape[a],) for a in range(arr.ndim))
        arr = arr.rechunk(target)
        deps.append(arr)
        aligned.append((arr, axis))
    args = []
    for c in constants:
        if isinstance(c, _Constant):
            dsk[c.key] = c.value
            args.append(c.key)
        elif isinstance(c, Delayed):  # a value computed lazily elsewhere in the graph
            deps.append(c)
            args.append(c.key)
        else:
            args.append(c)
    for k in range(len(chunks)):
        block_keys = [
            (arr.name, *(k if a == axis else 0 for a in range(arr.ndim))) for arr, axis in aligned
        ]
        dsk[(name, k, *(0,) * len(tail_shape))] = (
            func,
            int(bounds[k]),
            int(bounds[k + 1]),
            *block_keys,
            *args,
        )
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    out_chunks = (chunks, *((int(s),) for s in tail_shape))
    meta = np.empty((0,) * (1 + len(tail_shape)), dtype)
    return da.Array(graph, name, out_chunks, dtype=dtype, meta=meta)
