"""Carried-state recurrences as a scan over a fixed grid of frame blocks.

Block k starts from the exact state block k−1 ended with; only the small states form a
sequential chain, and a block's outputs are recomputed from its entry state on demand
(by each output, and inside the tasks of every consumer: the outputs are recomputed
layers), so no block waits in memory for a late reader. The grid is fixed here, not by the user's chunks, so a
recurrence (calcium kernel, activity gate, drifts, motion) gives the same numbers however
the recording is later chunked: consumers slice the blocks they need, and recomputing a
block repeats the same arithmetic.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np
from dask.base import tokenize

from .chunks import split_evenly
from .graph import _Constant, align_blocks, layer_graph, register_constants
from .profile import timed
from .read_only import guarded

#: Frames per scan block. Part of the output contract: changing it changes results.
SCAN_BLOCK = 256


@dataclass(frozen=True)
class ScanOutput:
    """One per-block output of a scan.

    ``shape`` has ``None`` where the frame axis goes, e.g. ``(n_cells, None)`` for a
    (cell, frame) trace or ``(None, 2)`` for per-frame (dy, dx). With ``per_block`` the
    output is a summary of each block instead (``shape`` has no ``None``), stacked along a
    new leading block axis: e.g. per-cell extremes, so a whole-recording statistic never
    has to read (and keep alive) the frame-sized output the pixel work will read.
    """

    name: str
    shape: tuple
    dtype: object
    per_block: bool = False

    @property
    def frame_axis(self) -> int:
        return 0 if self.per_block else self.shape.index(None)

    def chunks(self, grid) -> tuple:
        if self.per_block:
            return ((1,) * len(grid), *((int(s),) for s in self.shape))
        return tuple(grid if s is None else (int(s),) for s in self.shape)


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
        Inputs with a frame axis; block k of each is passed to ``step`` (blocks of
        recomputed layers, such as another scan's outputs, are computed inside the tasks
        that read them).
    constants : sequence
        Extra arguments (wrap large ones with :func:`constant`).
    block : int
        Frames per block (the fixed internal grid).

    Returns
    -------
    list of dask arrays, one per output, chunked on the block grid along the frame axis.
    """
    grid = split_evenly(n_frames, block)
    step = guarded(timed(step, name))  # itself unless profiled or checked
    bounds = np.concatenate([[0], np.cumsum(grid)]).astype(int)
    state_name = f"{name}-state"
    dsk: dict = {}
    deps: list = []
    init_key = (f"{name}-init",)
    if isinstance(init, tuple) and init and callable(init[0]):
        func, *init_args = init
        dsk[init_key] = (guarded(timed(func, name)), *register_constants(init_args, dsk, deps))
    else:
        dsk[init_key] = _Constant(init, init_key).task()
    consts = register_constants(constants, dsk, deps)
    sequence_keys = []
    for arr, axis in sequences:
        arr, keys = align_blocks(arr, axis, grid, inline=True)
        deps.append(arr)
        sequence_keys.append(keys)
    # The recurrence runs as a chain of tiny states (each task runs its block and keeps
    # only the state). Each output's blocks are recomputed from the state before them,
    # separately per output, so no two consumers share a block result: the cheap state
    # chain may run far ahead of the pixel work, and a statistic over one output (e.g. a
    # mean over all frames) never makes the scheduler hold another output's consumers.
    # What a block's outputs are a function of, so that readers in one process can share
    # them (see _BlockOutputs): the scan's name alone might be reused by another graph.
    identity = tokenize(name, step, dsk[init_key], consts, [a.name for a, _ in sequences], grid)
    previous = init_key
    calls = []
    for k in range(len(grid)):
        seq_keys = [keys[k] for keys in sequence_keys]
        call = (step, previous, k, int(bounds[k]), int(bounds[k + 1]), *seq_keys, *consts)
        memo_key = f"{identity}-{k}"
        dsk[(state_name, k)] = (_state_only, memo_key, *call)
        calls.append((memo_key, *call))
        previous = (state_name, k)
    arrays = []
    for j, out in enumerate(outputs):
        out_name = f"{name}-{out.name}"
        layer = dict(dsk)
        chunks = out.chunks(grid)
        task = _block_summary_only if out.per_block else _output_only
        for k, call in enumerate(calls):
            index = tuple(k if a == out.frame_axis else 0 for a in range(len(chunks)))
            layer[(out_name, *index)] = (task, j + 1, *call)
        graph = layer_graph(out_name, layer, deps, recomputed=True)
        meta = np.empty((0,) * len(chunks), out.dtype)
        arrays.append(da.Array(graph, out_name, chunks, dtype=out.dtype, meta=meta))
    return arrays


def _output_only(j, memo_key, step, state, k, start, stop, *args):
    return _BLOCK_OUTPUTS.get(memo_key, step, state, k, start, stop, *args)[j - 1]


def _block_summary_only(j, memo_key, step, state, k, start, stop, *args):
    return _BLOCK_OUTPUTS.get(memo_key, step, state, k, start, stop, *args)[j - 1][None]


def _state_only(memo_key, step, state, k, start, stop, *args):
    new_state, *outputs = step(state, k, start, stop, *args)
    _BLOCK_OUTPUTS.offer(memo_key, tuple(outputs))
    # Copy, so the state never keeps a whole block's arrays alive through a view.
    return copy.deepcopy(new_state)


class _BlockOutputs:
    """The outputs of the scan blocks read most recently in this process, up to a size.

    Every reader of a scan output recomputes the block it needs inside its own task (so no
    block waits in memory for a late reader), and one 256-frame block feeds several pixel
    chunks and several outputs: without sharing, a block's arithmetic ran once per chunk
    and per output. Here the first reader in a process computes it, and readers that come
    while it is still among the last ``max_bytes`` read take the same arrays (marked
    read-only: a kernel must not write into its inputs). A second thread asking for a block
    being computed waits for it rather than computing it twice. The state chain computes
    every block first and offers its outputs too, but only while there is room: it runs
    ahead of the pixel work, and must not push out the blocks being read. Same arithmetic
    either way, so the bytes never depend on what was kept.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._kept: OrderedDict = OrderedDict()  # key -> (outputs, nbytes)
        self._computing: dict = {}  # key -> _Pending
        self._bytes = 0

    def get(self, key, step, state, k, start, stop, *args) -> tuple:
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept[0]
            pending = self._computing.get(key)
            if pending is None:
                self._computing[key] = _Pending()
        if pending is not None:  # another thread computes this block: take its result
            pending.ready.wait()
            if pending.outputs is not None:
                return pending.outputs
            return self.get(key, step, state, k, start, stop, *args)  # it failed: try
        outputs = None
        try:
            outputs = _read_only(tuple(step(state, k, start, stop, *args)[1:]))
            self._keep(key, outputs, evict=True)
        finally:
            with self._lock:
                done = self._computing.pop(key)
            done.outputs = outputs
            done.ready.set()
        return outputs

    def offer(self, key, outputs: tuple) -> None:
        """Keep a block computed elsewhere (the state chain) if it fits without evicting."""
        self._keep(key, _read_only(outputs), evict=False)

    def _keep(self, key, outputs: tuple, evict: bool) -> None:
        nbytes = sum(out.nbytes for out in outputs if isinstance(out, np.ndarray))
        with self._lock:
            fits = self._bytes + nbytes <= self.max_bytes
            if key in self._kept or nbytes > self.max_bytes or not (fits or evict):
                return
            self._kept[key] = (outputs, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                _, (_, freed) = self._kept.popitem(last=False)
                self._bytes -= freed

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._bytes = 0


class _Pending:
    """A block being computed: waiting readers take its outputs when it is ready."""

    def __init__(self):
        self.ready = threading.Event()
        self.outputs = None


def _read_only(outputs: tuple) -> tuple:
    """Outputs as every reader gets them, kept or not: shared, so not writable."""
    for out in outputs:
        if isinstance(out, np.ndarray):
            out.flags.writeable = False
    return outputs


#: Per process: a few blocks of every scan (traces of ~1500 cells are ~1.5 MB a block).
_BLOCK_OUTPUTS = _BlockOutputs(max_bytes=64 * 2**20)
