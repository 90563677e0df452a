"""What a distributed scheduler and a pickler see in a recording's Zarr-write graph.

Usage::

    python benchmarks/probe_graph.py                 # 512 px, 60 s, full rung-6 chain
    python benchmarks/probe_graph.py --n 256 --duration 120

Builds ``write_recording_lazily(simulate(spec), store)`` and reports:

* the pickled size of the graph and its largest entries (what ``distributed`` ships to
  the scheduler with every write; it warns above 10 MB);
* the tasks that ``distributed`` classifies as root-ish, counted by key prefix. They are
  queued on the scheduler until a worker has nothing else to run, so a pixel task that
  depends on one makes finished chunks pile up. Found with a ``SchedulerPlugin`` calling
  ``Scheduler.is_rootish`` on every task of the graph as it arrives, on an in-process
  one-worker ``LocalCluster`` (the write runs for real).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MIB, make_spec  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args(argv)

    import cloudpickle
    from dask.utils import key_split
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    import minisim
    from minisim.io.zarr_store import write_recording_lazily

    class RootishProbe(SchedulerPlugin):
        name = "rootish-probe"

        def __init__(self):
            self.found = []

        def update_graph(self, scheduler, *, keys, tasks=None, **kwargs):
            for key in tasks or []:
                task = scheduler.tasks.get(key)
                if task is not None and scheduler.is_rootish(task):
                    self.found.append(key)

    spec = make_spec(args.n, args.duration, "rung6")
    with tempfile.TemporaryDirectory() as tmp:
        write = write_recording_lazily(minisim.simulate(spec), str(Path(tmp) / "a.zarr"))
        graph = dict(write.__dask_graph__())
        entries = sorted(((len(cloudpickle.dumps(v)), str(k)) for k, v in graph.items()))[::-1]
        print(f"{len(graph)} tasks, pickled {len(cloudpickle.dumps(graph)) / MIB:.2f} MiB")
        for size, key in entries[:6]:
            print(f"  {size / MIB:7.2f} MiB  {key[:80]}")
        with (
            LocalCluster(
                n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            client.register_plugin(RootishProbe())
            rec = minisim.simulate(spec)
            write_recording_lazily(rec, str(Path(tmp) / "b.zarr")).compute()
            found = client.run_on_scheduler(
                lambda dask_scheduler: dask_scheduler.plugins["rootish-probe"].found
            )
    counts = collections.Counter(key_split(k) for k in found)
    print(f"root-ish tasks (queued by distributed): {sum(counts.values())}")
    for prefix, count in counts.most_common():
        print(f"  {count:5d}  {prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
