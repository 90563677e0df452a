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
    after: Sequence = (),
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
        Arrays aligned with the leading axis along ``axis``; they are re-cut so block k
        of the input covers exactly the same range, with every other axis in one chunk.
    constants : sequence
        Extra arguments; values wrapped by :func:`constant` are stored once, and
        ``dask.delayed`` values become dependencies (their result is passed).
    after : sequence of dask arrays or delayed
        Values every block waits for without using them: whole-recording statistics that
        pixel work should follow, so the scheduler never piles up finished pixel chunks
        while it is still computing them.
    """
    chunks = tuple(int(c) for c in chunks)
    bounds = _offsets(chunks)
    dsk: dict = {}
    deps = []
    input_keys = []
    for i, (arr, axis) in enumerate(inputs):
        arr, keys = align_blocks(dsk, arr, axis, chunks, f"{name}-align{i}")
        deps.append(arr)
        input_keys.append(keys)
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
    wait_keys = []
    for value in after:
        deps.append(value)
        wait_keys.extend(value.__dask_keys__() if isinstance(value, da.Array) else [value.key])
    for k in range(len(chunks)):
        task = (func, int(bounds[k]), int(bounds[k + 1]), *(keys[k] for keys in input_keys), *args)
        if wait_keys:
            task = (_after, list(_flatten(wait_keys)), *task)
        dsk[(name, k, *(0,) * len(tail_shape))] = task
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    out_chunks = (chunks, *((int(s),) for s in tail_shape))
    meta = np.empty((0,) * (1 + len(tail_shape)), dtype)
    return da.Array(graph, name, out_chunks, dtype=dtype, meta=meta)


def align_blocks(dsk: dict, arr: da.Array, axis: int, chunks: Sequence[int], prefix: str):
    """Keys of ``arr``'s blocks re-cut to ``chunks`` along ``axis`` (whole along the others).

    When the cuts already match, the array's own keys are used. Otherwise small tasks
    named ``prefix`` concatenate the overlapping slices into the consumer's own layer,
    so the task graph shows only steps, never anonymous rechunk layers.
    Returns the (possibly rechunked along other axes) array and one key per target block.
    """
    axis = axis % arr.ndim
    others = tuple((arr.shape[a],) if a != axis else arr.chunks[a] for a in range(arr.ndim))
    if arr.chunks != others:
        arr = arr.rechunk(others)
    source = _offsets(arr.chunks[axis])
    target = _offsets(chunks)
    if tuple(arr.chunks[axis]) == tuple(chunks):
        return arr, [
            (arr.name, *(k if a == axis else 0 for a in range(arr.ndim)))
            for k in range(len(chunks))
        ]
    keys = []
    for k in range(len(chunks)):
        lo, hi = int(target[k]), int(target[k + 1])
        first = int(np.searchsorted(source, lo, side="right") - 1)
        pieces = []
        j = first
        while j < len(source) - 1 and source[j] < hi:
            start, stop = max(lo, source[j]) - source[j], min(hi, source[j + 1]) - source[j]
            key = (arr.name, *(j if a == axis else 0 for a in range(arr.ndim)))
            pieces.append((key, int(start), int(stop)))
            j += 1
        if len(pieces) == 1 and (pieces[0][1], pieces[0][2]) == (
            0,
            int(source[first + 1] - source[first]),
        ):
            keys.append(pieces[0][0])
            continue
        out_key = (prefix, k)
        dsk[out_key] = (
            _concat_slices,
            axis,
            [p[1] for p in pieces],
            [p[2] for p in pieces],
            *[p[0] for p in pieces],
        )
        keys.append(out_key)
    return arr, keys


def _concat_slices(axis, starts, stops, *blocks):
    parts = []
    for block, start, stop in zip(blocks, starts, stops, strict=True):
        index = [slice(None)] * block.ndim
        index[axis] = slice(start, stop)
        parts.append(block[tuple(index)])
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def _after(_waited, func, *args):
    return func(*args)


def _flatten(keys):
    for key in keys:
        if isinstance(key, list):
            yield from _flatten(key)
        else:
            yield key
