"""Graph building blocks: blockwise maps that pass absolute index ranges to kernels.

Kernels receive ``(start, stop)`` of the block along its leading axis (absolute frame or
cell indices), so keyed random streams and carried state never depend on how the user
chunked the recording. Small constants (footprint patches, per-cell parameters) live under
one graph key each, so the pickled graph does not repeat them per task.

The engine, not the steps, decides what is shared and what is recomputed: a layer built
as *recomputed* (:class:`RecomputedLayer`: scan outputs, per-frame values, the pixel
chain) is computed again inside every task of this module that reads it, so no block of
it waits in memory between its first reader and its last; every other layer (a
whole-recording statistic, a static field) is computed once and shared.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from .profile import timed
from .read_only import guarded


class RecomputedLayer(MaterializedLayer):
    """A layer whose blocks are cheap to compute again from what they depend on.

    Readers built by :func:`map_ranges`, :func:`~minisim.engine.scan.scan` and the scene
    copy such a block's task into their own task instead of depending on its result.
    Dask treats it as any materialized layer; only this module reads the distinction.
    """


def layer_graph(name: str, dsk: dict, deps: Sequence, recomputed: bool) -> HighLevelGraph:
    """The graph of ``deps`` plus the layer ``dsk`` called ``name``."""
    layer = RecomputedLayer(dsk) if recomputed else dsk
    return HighLevelGraph.from_collections(name, layer, dependencies=deps)


class _Constant:
    """A small object stored once in a graph and referenced by key from many tasks.

    Either a value, or a recipe ``(func, *args)`` that computes it where it is needed.
    """

    def __init__(self, value, key, recipe: tuple | None = None):
        self.value = value
        self.key = key
        self.recipe = recipe

    def task(self) -> tuple:
        # A task that returns the value, not the value as plain graph data: dask marks
        # plain data a "data producer", which distributed queues as a root task until a
        # worker has nothing else to run, so pixel chunks piled up waiting for a field.
        return self.recipe if self.recipe is not None else (_value_of, self)


def _value_of(c: _Constant):
    return c.value


def register_constants(values: Sequence, dsk: dict, deps: list) -> list:
    """Task arguments for ``values``: :func:`constant` wrappers are stored once in ``dsk``
    and ``dask.delayed`` values become dependencies (both are passed by key)."""
    args = []
    for value in values:
        if isinstance(value, _Constant):
            dsk[value.key] = value.task()
            args.append(value.key)
        elif isinstance(value, Delayed):
            deps.append(value)
            args.append(value.key)
        else:
            args.append(value)
    return args


def constant(value, prefix: str = "const") -> _Constant:
    """Wrap a small value so :func:`map_ranges` stores it under a single graph key.

    A ``dask.delayed`` value is returned as is: it is already a single graph node.
    """
    if isinstance(value, Delayed):
        return value
    return _Constant(value, (f"{prefix}-{tokenize(value)}",))


def recipe(prefix: str, func, *args, token=None) -> _Constant:
    """A constant computed by ``func(*args)`` on the worker that needs it, not shipped.

    For pixel-sized values that small arguments determine (a static field, the neuropil's
    spatial components): the graph carries the arguments instead of megabytes. The key
    hashes ``token`` when given (e.g. the step's JSON), else ``func`` and ``args``.
    """
    key = (f"{prefix}-{tokenize(func, *args) if token is None else tokenize(token)}",)
    return _Constant(None, key, recipe=(guarded(timed(func, prefix)), *args))


def as_delayed(arr: da.Array) -> Delayed:
    """A small array as one ``Delayed`` sharing the array's graph keys.

    Passing a dask array straight into ``dask.delayed`` optimizes a private copy of its
    graph under new random key names: the work behind it (a whole scan chain) would run
    once per copy, and the keys would change from one build to the next.
    """
    if arr.npartitions != 1:
        arr = arr.rechunk(arr.shape)
    return arr.to_delayed(optimize_graph=False).ravel()[0]


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
    recomputed: bool = False,
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
    recomputed : bool
        Build the layer as a :class:`RecomputedLayer`: readers compute its blocks inside
        their own tasks instead of sharing them.
    """
    chunks = tuple(int(c) for c in chunks)
    bounds = _offsets(chunks)
    func = guarded(timed(func, name))  # itself unless profiled or checked
    dsk: dict = {}
    deps = []
    input_keys = []
    for arr, axis in inputs:
        arr, keys = align_blocks(arr, axis, chunks, inline=True)
        deps.append(arr)
        input_keys.append(keys)
    args = register_constants(constants, dsk, deps)
    for k in range(len(chunks)):
        task = (func, int(bounds[k]), int(bounds[k + 1]), *(keys[k] for keys in input_keys), *args)
        dsk[(name, k, *(0,) * len(tail_shape))] = task
    graph = layer_graph(name, dsk, deps, recomputed)
    out_chunks = (chunks, *((int(s),) for s in tail_shape))
    meta = np.empty((0,) * (1 + len(tail_shape)), dtype)
    return da.Array(graph, name, out_chunks, dtype=dtype, meta=meta)


def recut(arr: da.Array, axis: int, chunks: Sequence[int], name: str) -> da.Array:
    """``arr`` with blocks cut to ``chunks`` along ``axis`` (whole along the other axes).

    Like ``arr.rechunk``, but each new block is one task reading its source blocks
    directly (no split/merge layers, which distributed may queue as root tasks while
    their source blocks wait in memory), in a layer called ``name``.
    """
    chunks = tuple(int(c) for c in chunks)
    axis = axis % arr.ndim
    arr, args = align_blocks(arr, axis, chunks)
    if all(not isinstance(a, tuple) or not callable(a[0]) for a in args):
        return arr  # already cut this way
    dsk = {
        (name, *(k if a == axis else 0 for a in range(arr.ndim))): (np.ascontiguousarray, arg)
        for k, arg in enumerate(args)
    }
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[arr])
    out_chunks = tuple(chunks if a == axis else (arr.shape[a],) for a in range(arr.ndim))
    return da.Array(graph, name, out_chunks, dtype=arr.dtype, meta=arr._meta)


def align_blocks(arr: da.Array, axis: int, chunks: Sequence[int], inline: bool = False):
    """Task arguments giving ``arr``'s values re-cut to ``chunks`` along ``axis``.

    Returns the array (rechunked whole along the other axes if needed) and one argument
    per target block: the source block's key when the cuts match, otherwise an inline
    sub-task that slices and joins the overlapping source blocks inside the consumer's own
    task. No separate re-cut tasks: distributed treats a group of small tasks that all read
    one shared block (a whole-recording statistic) as root tasks and queues them behind
    every ready chunk, which made finished pixel chunks pile up on the workers.

    With ``inline``, the blocks of a :class:`RecomputedLayer` are computed again inside
    the consumer's task instead of being shared: cheap blocks that an early consumer (a
    state chain, a statistic) and a late one (the pixel work) both read would otherwise
    wait in memory from the first read to the last.
    """
    axis = axis % arr.ndim
    others = tuple((arr.shape[a],) if a != axis else arr.chunks[a] for a in range(arr.ndim))
    if arr.chunks != others:
        arr = arr.rechunk(others)
    source = _offsets(arr.chunks[axis])
    target = _offsets(chunks)

    own = arr.dask.layers.get(arr.name)

    def key(j):
        block = (arr.name, *(j if a == axis else 0 for a in range(arr.ndim)))
        if inline and isinstance(own, RecomputedLayer):
            task = own.get(block)
            if isinstance(task, tuple) and task and callable(task[0]):
                return task
        return block

    if tuple(arr.chunks[axis]) == tuple(chunks):
        return arr, [key(k) for k in range(len(chunks))]
    args = []
    for k in range(len(chunks)):
        lo, hi = int(target[k]), int(target[k + 1])
        j = int(np.searchsorted(source, lo, side="right") - 1)
        pieces = []
        while j < len(source) - 1 and source[j] < hi:
            start, stop = max(lo, source[j]) - source[j], min(hi, source[j + 1]) - source[j]
            pieces.append((key(j), int(start), int(stop), int(source[j + 1] - source[j])))
            j += 1
        if len(pieces) == 1 and pieces[0][1:3] == (0, pieces[0][3]):
            args.append(pieces[0][0])
            continue
        args.append(
            (
                _concat_slices,
                axis,
                [p[1] for p in pieces],
                [p[2] for p in pieces],
                *[p[0] for p in pieces],
            )
        )
    return arr, args


def _concat_slices(axis, starts, stops, *blocks):
    parts = []
    for block, start, stop in zip(blocks, starts, stops, strict=True):
        index = [slice(None)] * block.ndim
        index[axis] = slice(start, stop)
        parts.append(block[tuple(index)])
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)


def take_frames(arr: da.Array, axis: int, kept: np.ndarray, chunks, name: str) -> da.Array:
    """``arr`` with only the ``kept`` indices (sorted) along ``axis``, cut to ``chunks``.

    Each output block is one task taking its frames straight from the source blocks that
    hold them (stores need regular chunks, so a block may join frames of two sources),
    in a layer called ``name``.
    """
    bounds = np.cumsum((0, *arr.chunks[axis]))
    source_of = np.searchsorted(bounds, kept, side="right") - 1
    ends = np.cumsum((0, *chunks))
    other = [range(n) if a != axis else [None] for a, n in enumerate(arr.numblocks)]
    dsk = {}
    for out_index, (lo, hi) in enumerate(itertools.pairwise(ends)):
        wanted, sources = kept[lo:hi], source_of[lo:hi]
        for block in itertools.product(*other):
            parts = []
            for source in np.unique(sources):
                local = wanted[sources == source] - bounds[source]
                key = (arr.name, *(int(source) if a == axis else b for a, b in enumerate(block)))
                parts.append((np.take, key, local, axis))
            dst = tuple(out_index if a == axis else b for a, b in enumerate(block))
            dsk[(name, *dst)] = (join_frames, parts, axis)
    out_chunks = tuple(tuple(chunks) if a == axis else c for a, c in enumerate(arr.chunks))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[arr])
    return da.Array(graph, name, out_chunks, dtype=arr.dtype, meta=arr._meta)


def join_frames(parts: list[np.ndarray], axis: int) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)
