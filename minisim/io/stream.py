"""Blocks of a lazy array, computed in one pass and handed over in order, in bounded memory.

Exporters write formats whose libraries *pull* data (pynwb's chunk iterators, tifffile's
page iterators, an encoder fed frame by frame). :func:`iter_blocks` turns a dask array into
such a stream: the whole array is one graph (so work shared between blocks, such as the
carried state of a scan, is done once), computed on a background thread that hands each
block over through a small queue. The queue's size bounds how many computed blocks wait in
memory; a consumer that stops early cancels the computation.

With a ``distributed.Client`` active, blocks are computed on the cluster a few at a time
and gathered here in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import dask.array as da
import numpy as np
from dask import delayed

#: Blocks computed ahead of the one being written (the memory bound, in blocks).
DEFAULT_AHEAD = 2
#: Target size of a block cut from an in-memory array (bytes).
IN_MEMORY_BLOCK_BYTES = 64 * 2**20

_DONE = object()


class _Cancelled(Exception):
    """The consumer stopped reading; the producer gives up."""


def iter_blocks(
    data, axis: int = 0, *, ahead: int = DEFAULT_AHEAD
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)`` along ``axis`` in order, each block whole on the other axes.

    ``data`` is a dask array (computed block by block in one graph), an xarray object
    (its ``.data``) or anything numpy accepts (cut into blocks of about 64 MiB).
    """
    data = getattr(data, "data", data)
    if not isinstance(data, da.Array):
        yield from _iter_in_memory(np.asarray(data), axis)
        return
    if data.shape[axis] == 0:
        return
    whole = {ax: -1 for ax in range(data.ndim) if ax != axis}
    if any(len(data.chunks[ax]) > 1 for ax in whole):
        data = data.rechunk(whole)
    starts = np.concatenate([[0], np.cumsum(data.chunks[axis])[:-1]]).astype(int)
    blocks = list(data.to_delayed(optimize_graph=False).ravel())
    client = _distributed_client()
    if client is not None:
        yield from _iter_from_cluster(client, starts, blocks, ahead)
    else:
        yield from _iter_threaded(starts, blocks, ahead)


def _iter_in_memory(array: np.ndarray, axis: int):
    n = array.shape[axis]
    row_bytes = max(1, array.nbytes // max(n, 1))
    step = max(1, IN_MEMORY_BLOCK_BYTES // row_bytes)
    for start in range(0, n, step):
        index = [slice(None)] * array.ndim
        index[axis] = slice(start, min(n, start + step))
        yield start, array[tuple(index)]


def _iter_threaded(starts, blocks, ahead: int):
    handover: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    cancelled = threading.Event()
    handed = None
    for start, block in zip(starts, blocks, strict=True):
        # A chain: block k is handed over only after block k − 1, so the scheduler follows
        # it front to back and finished blocks never pile up behind a slow one.
        handed = delayed(_hand_over, pure=False)(handover, cancelled, int(start), block, handed)

    def produce():
        try:
            handed.compute(scheduler="threads")
        except _Cancelled:
            return
        except BaseException as err:  # handed to the consumer, raised there
            _put(handover, cancelled, ("error", err))
            return
        _put(handover, cancelled, _DONE)

    producer = threading.Thread(target=produce, name="minisim-export-blocks", daemon=True)
    producer.start()
    try:
        while True:
            item = handover.get()
            if item is _DONE:
                break
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "error":
                raise item[1]
            yield item
    finally:
        cancelled.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            try:
                handover.get(timeout=0.05)
            except queue.Empty:
                pass
        producer.join()


def _hand_over(handover, cancelled, start, block, _previous):
    if not _put(handover, cancelled, (start, np.asarray(block))):
        raise _Cancelled
    return start


def _put(handover, cancelled, item) -> bool:
    while not cancelled.is_set():
        try:
            handover.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _distributed_client():
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def _iter_from_cluster(client, starts, blocks, ahead: int):
    window = max(1, ahead) * 2
    futures = client.compute(blocks[:window])
    submitted = len(futures)
    try:
        for k, start in enumerate(starts):
            block = futures[k].result()
            futures[k].release()
            futures[k] = None
            if submitted < len(blocks):
                futures.extend(client.compute(blocks[submitted : submitted + 1]))
                submitted += 1
            yield int(start), np.asarray(block)
    finally:
        client.cancel([f for f in futures if f is not None])


def progress_bar(total: int, label: str, enabled: bool = True, unit: str = "frame"):
    """A tqdm bar on stderr (None when disabled or tqdm is missing)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - progress is optional
        return None
    return tqdm(total=total, unit=unit, desc=f"writing {label}", leave=False)
