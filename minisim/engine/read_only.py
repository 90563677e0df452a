"""A build-time check that kernels leave their inputs alone.

Kernels must return new arrays: the engine hands one block to several readers (a scan's
outputs are shared per process, constants are stored once per graph), so a kernel that
writes into an input changes what the others read, and the bytes would then depend on
the order the scheduler happened to run tasks in. Shared scan outputs already arrive
read-only, but only when a chunk lies inside one scan block; inside
:func:`read_only_inputs`, every array a kernel receives (as an argument, or in a tuple,
list or dict argument) is a read-only view, so such a write raises at once, whatever the
chunking. Kernels of pixel and frame maps, statistics, scans, recipes and cell calls are
covered. Off by default (the graph then holds the kernels themselves); the conformance
checks turn it on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

_ENABLED: ContextVar[bool] = ContextVar("minisim_read_only_inputs", default=False)


@contextmanager
def read_only_inputs():
    """Build graphs whose kernels receive read-only views of their array arguments."""
    token = _ENABLED.set(True)
    try:
        yield
    finally:
        _ENABLED.reset(token)


class ReadOnlyArguments:
    """A kernel called with read-only views of its array arguments, also inside plain
    tuples, lists and dicts (not inside other objects, such as footprints)."""

    def __init__(self, func: Callable):
        self.func = func
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, *args, **kwargs):
        return self.func(*(_read_only(a) for a in args), **kwargs)

    def __repr__(self) -> str:
        return f"ReadOnlyArguments({self.__name__})"


def _read_only(value):
    if isinstance(value, np.ndarray):
        if value.flags.writeable:
            value = value.view()  # the caller's array stays as it was
            value.flags.writeable = False
        return value
    if type(value) in (tuple, list):  # a scan's state, a list of blocks
        return type(value)(_read_only(v) for v in value)
    if type(value) is dict:
        return {k: _read_only(v) for k, v in value.items()}
    return value


def guarded(func: Callable) -> Callable:
    """``func`` itself, or its read-only-arguments wrapper inside :func:`read_only_inputs`."""
    if not _ENABLED.get() or isinstance(func, ReadOnlyArguments):
        return func
    return ReadOnlyArguments(func)
