"""Draw every documentation figure: ``python -m graphs [--small] [--out DIR]``.

Each module of this folder whose name does not start with ``_`` and that defines
``main(out_dir, small=False) -> list[Path]`` is a figure script; all of them run, and
the paths of the PNGs they wrote are printed, one per line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def figure_modules() -> list[str]:
    """Names (``graphs.<name>``) of the figure scripts, sorted."""
    return [
        f"{__package__ or 'graphs'}.{info.name}"
        for info in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda i: i.name)
        if not info.name.startswith("_") and not info.ispkg
    ]


def main(argv: list[str] | None = None) -> list[Path]:
    """Run every figure script; return (and print) the PNG paths written."""
    parser = argparse.ArgumentParser(prog="python -m graphs", description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: the graphs/ folder)"
    )
    parser.add_argument("--small", action="store_true", help="tiny, fast versions (for tests)")
    parser.add_argument("--timings", action="store_true", help="print each script's runtime")
    args = parser.parse_args(argv)
    written: list[Path] = []
    for name in figure_modules():
        module = importlib.import_module(name)
        if not callable(getattr(module, "main", None)):
            continue
        start = time.perf_counter()
        paths = module.main(args.out, small=args.small)
        if args.timings:
            print(f"# {name}: {time.perf_counter() - start:.1f} s")
        for path in paths:
            print(path)
        written.extend(paths)
    return written


if __name__ == "__main__":
    main()
