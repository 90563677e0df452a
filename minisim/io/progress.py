"""Computing lazy writes with an optional progress bar, on whichever scheduler is in force."""

from __future__ import annotations

import sys


def compute(values: list, *, progress: bool = False, client=None) -> list:
    """Compute ``values`` together; with ``progress``, show a bar on stderr.

    On a ``distributed.Client`` (``client``, or the default one if there is one) the bar is
    distributed's own; otherwise dask's ``ProgressBar`` for the local schedulers.
    """
    import dask

    if client is None:
        try:
            from distributed import get_client

            client = get_client()
        except (ImportError, ValueError):
            client = None
    if client is not None:
        futures = client.compute(list(values))
        if progress:
            from distributed import progress as show

            show(futures)
        return client.gather(futures)
    if not progress:
        return list(dask.compute(*values))
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr):
        return list(dask.compute(*values))
