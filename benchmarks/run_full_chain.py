"""Compute one full-chain recording (the ladder's rung 6) in this process and print its time.

For whole-process comparisons of two versions of the package (run it with each version
first on ``PYTHONPATH``) under an external timer such as ``/usr/bin/time -v``::

    PYTHONPATH=/path/to/other/checkout python benchmarks/run_full_chain.py --px 512 --duration 30
    python benchmarks/run_full_chain.py --px 512 --duration 30

``--noise gaussian`` isolates the rest of the chain from the shot-noise sampler.
``--nonrigid-um 2`` adds non-rigid brain motion (``--nonrigid-scale-um``, default 60)::

    python benchmarks/run_full_chain.py --px 200 --duration 20 --nonrigid-um 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--px", type=int, default=512)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--noise", choices=["poisson", "gaussian"], default="poisson")
    parser.add_argument("--nonrigid-um", type=float, default=0.0)
    parser.add_argument("--nonrigid-scale-um", type=float, default=60.0)
    args = parser.parse_args()

    import minisim

    spec = make_spec(args.px, args.duration, shot_noise=args.noise)
    if args.nonrigid_um > 0:
        bent = {"nonrigid_um": args.nonrigid_um, "nonrigid_scale_um": args.nonrigid_scale_um}
        steps = [s.model_dump() | bent if s.kind == "brain_motion" else s.model_dump()
                 for s in spec.steps]  # fmt: skip
        spec = minisim.Spec.model_validate(spec.model_dump() | {"steps": steps})
    start = time.perf_counter()
    rec = minisim.simulate(spec)
    built = time.perf_counter() - start
    peak = rec.observed.data.max().compute()
    total = time.perf_counter() - start
    print(f"minisim from {Path(minisim.__file__).parent}: built {built:.2f} s, "
          f"computed in {total:.1f} s, peak count {int(peak)}")  # fmt: skip


if __name__ == "__main__":
    main()
