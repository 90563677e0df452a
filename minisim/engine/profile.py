"""Per-step timing of a computation whose pixel chain runs fused in one task per chunk.

Off by default, and then nothing here runs: graphs hold the kernels themselves. Inside
:func:`profiling`, the graph builders (:func:`~minisim.engine.map_ranges`,
:func:`~minisim.engine.scan`, :func:`~minisim.engine.recipe`) wrap each kernel in a
:class:`Timed` carrying the step's name (the first part of its layer name), so a fused task
that runs composite → neuropil → … → sensor still reports each step's share. Times are
*exclusive*: a timed call nested in another (a fused dask subgraph around a kernel) is
subtracted from its parent, so every second is counted once.

Times are collected in this process, so :func:`run_profiled` computes with the local
threaded scheduler (or the synchronous one, when that is the scheduler in force), whatever
other scheduler is configured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

_ENABLED: ContextVar[bool] = ContextVar("minisim_profiling", default=False)
_LOCK = threading.Lock()
_TOTALS: dict[str, float] = {}
_CALLS: dict[str, int] = {}
_LOCAL = threading.local()


@contextmanager
def profiling():
    """Build graphs with timed kernels inside this block (checked at graph-build time)."""
    token = _ENABLED.set(True)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def label_of(name: str) -> str:
    """The step a layer belongs to: layer names start with the step's kind."""
    return str(name).split("-", 1)[0]


def _record(label: str, seconds: float) -> None:
    with _LOCK:
        _TOTALS[label] = _TOTALS.get(label, 0.0) + seconds
        _CALLS[label] = _CALLS.get(label, 0) + 1


@contextmanager
def timing(label: str):
    """Count the block's time (minus timed calls nested in it) under ``label``."""
    stack = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    stack.append(0.0)
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        nested = stack.pop()
        if stack:
            stack[-1] += elapsed
        _record(label, elapsed - nested)


class Timed:
    """A kernel that adds its (exclusive) run time to its step's total."""

    def __init__(self, func: Callable, label: str):
        self.func = func
        self.label = label
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, *args, **kwargs):
        with timing(self.label):
            return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Timed({self.__name__}, {self.label!r})"


def timed(func: Callable, name: str) -> Callable:
    """``func`` itself, or a :class:`Timed` wrapper while :func:`profiling` is on."""
    if not _ENABLED.get() or isinstance(func, Timed):
        return func
    return Timed(func, label_of(name))


@contextmanager
def step_timer(label: str):
    """Time graph building (and any eager work in it) under ``label``, when profiling."""
    if not _ENABLED.get():
        yield
        return
    with timing(label):
        yield


@dataclass
class StepProfile:
    """Seconds spent per step of one profiled run.

    ``seconds`` maps each step (in chain order), then ``"writing"``, ``"ground truth"``
    (assembling the truth variables) and ``"other"`` (dask's own tasks) to the time their
    kernels ran, summed over threads;
    ``wall_s`` is the run's wall time and ``threads`` the threads it ran on.
    """

    seconds: dict[str, float]
    wall_s: float
    threads: int
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())

    def to_frame(self):
        """The table as a pandas DataFrame (index: step; seconds, share, calls)."""
        import pandas as pd

        total = self.total_s or 1.0
        return pd.DataFrame(
            {
                "seconds": list(self.seconds.values()),
                "share": [s / total for s in self.seconds.values()],
                "calls": [self.calls.get(k, 0) for k in self.seconds],
            },
            index=pd.Index(list(self.seconds), name="step"),
        )

    def __str__(self) -> str:
        total = self.total_s or 1.0
        width = max(len(k) for k in (*self.seconds, "total"))
        lines = [f"{'step':<{width}}  {'seconds':>8}  {'share':>6}"]
        for name, seconds in self.seconds.items():
            lines.append(f"{name:<{width}}  {seconds:8.3f}  {seconds / total:6.1%}")
        lines.append(f"{'total':<{width}}  {self.total_s:8.3f}  {1:6.1%}")
        lines.append(
            f"wall time {self.wall_s:.3f} s on {self.threads} thread(s); step times are "
            "summed over threads"
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # notebooks
        return self.to_frame()._repr_html_()


def _wrap_node(key, node):
    """A graph node whose calls are timed under the step its key names.

    A fused dask subgraph gets each inner task timed under the inner task's own key (a
    pixel chunk fused with its write reports both), and its own call under ``key``.
    """
    from dask._task_spec import Task

    label = label_of(key[0] if isinstance(key, tuple) else key)
    if isinstance(node, Task):
        args = node.args
        if node.has_subgraph() and args and isinstance(args[0], dict):
            inner = {k: _wrap_node(k, v) for k, v in args[0].items()}
            args = (inner, *args[1:])
        func = node.func if isinstance(node.func, Timed) else Timed(node.func, label)
        return Task(key, func, *args, _data_producer=node.data_producer, **node.kwargs)
    if isinstance(node, tuple) and node and callable(node[0]) and not isinstance(node[0], Timed):
        return (Timed(node[0], label), *node[1:])
    return node


def run_profiled(
    build: Callable[[], object],
    steps: Iterable[str],
    writing: Iterable[str] = ("store", "finish", "_finish"),
    labels: Mapping[str, str] | None = None,
) -> StepProfile:
    """Build a computation with timed kernels, run it, and return the time per step.

    Parameters
    ----------
    build : callable
        Returns the dask collection to compute (its graph is built inside
        :func:`profiling`, so its kernels are timed); its own run time (eager work while
        building) is counted per step by :func:`step_timer`.
    steps : iterable of str
        The step kinds, in order: the table's rows.
    writing : iterable of str
        Layer-name prefixes of the tasks that write the output.
    labels : mapping, optional
        Extra prefix → row name mappings (step kinds keep their own rows).
    """
    import dask
    from dask._task_spec import convert_legacy_graph

    steps = list(steps)
    # Steps win over the extra labels (a truth variable may share a step's name).
    names = dict(labels or {}) | dict.fromkeys(writing, "writing") | {s: s for s in steps}
    scheduler = dask.config.get("scheduler", None)
    synchronous = scheduler in ("sync", "synchronous", "single-threaded")
    with _LOCK:
        _TOTALS.clear()
        _CALLS.clear()
    start = time.perf_counter()
    with profiling():
        collection = build()
        graph = convert_legacy_graph(dict(collection.__dask_graph__()))
        keys = collection.__dask_keys__()
        graph = {key: _wrap_node(key, node) for key, node in graph.items()}
    if synchronous:
        threads = 1
        dask.get(graph, keys)
    else:  # local threads whatever the scheduler: the times are collected in this process
        from dask.system import CPU_COUNT
        from dask.threaded import get

        threads = int(dask.config.get("num_workers", None) or CPU_COUNT or 1)
        get(graph, keys, num_workers=threads)
    wall = time.perf_counter() - start
    with _LOCK:
        totals, calls = dict(_TOTALS), dict(_CALLS)
    seconds = {s: 0.0 for s in steps}
    counts = {s: 0 for s in steps}
    seconds["writing"] = seconds["ground truth"] = seconds["other"] = 0.0
    for label, value in totals.items():
        row = names.get(label, "other")
        seconds[row] = seconds.get(row, 0.0) + value
        counts[row] = counts.get(row, 0) + calls[label]
    return StepProfile(seconds=seconds, wall_s=wall, threads=threads, calls=counts)
