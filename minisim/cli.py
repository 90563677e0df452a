"""The ``minisim`` command line: run, video, dataset, info, demo."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

EXAMPLES = """examples:
  minisim demo                                   the full chain (200×200 px, 20 s), locally
  minisim run spec.json -o rec.zarr --chunks 256
  minisim run spec.json -o rec.zarr --scheduler tcp://scheduler:8786
  minisim video spec.json -o rec.avi
  minisim dataset base.json --axis acquisition.optics.na=0.3,0.45 --axis seed=0,1,2 -o archive/
  minisim info rec.zarr
"""


class UsageError(Exception):
    """Bad input from the command line: reported, exit code 2."""


def demo_spec(duration_s: float, px: int, seed: int):
    """The examples ladder's full chain on its acquisition (1 µm/px)."""
    from . import (
        Acquisition,
        Bleaching,
        BrainMotion,
        CellActivity,
        CellOptics,
        Composite,
        IlluminationProfile,
        ImageSensor,
        Leakage,
        Neuropil,
        Optics,
        PlaceNeurons,
        Sensor,
        Spec,
        Vignette,
    )

    acq = Acquisition(
        fps=20.0,
        duration_s=duration_s,
        optics=Optics(magnification=8.0),
        image_sensor=ImageSensor(n_px_height=px, n_px_width=px, pixel_pitch_um=8.0),
    )
    steps = [PlaceNeurons(), CellActivity(), Bleaching(), CellOptics(), Composite(), Neuropil(),
             BrainMotion(), IlluminationProfile(), Vignette(), Leakage(), Sensor()]  # fmt: skip
    return Spec(acquisition=acq, seed=seed, steps=steps)


def load_spec(path: str):
    from pydantic import ValidationError

    from .spec import Spec

    try:
        text = Path(path).read_text()
    except OSError as err:
        raise UsageError(f"cannot read spec file {path}: {err.strerror}") from err
    try:
        return Spec.model_validate_json(text)
    except ValidationError as err:
        raise UsageError(f"invalid spec in {path}:\n{err}") from err


@contextlib.contextmanager
def scheduler(name: str):
    """Compute on threads, processes, or the dask cluster at an address, with progress."""
    import dask

    if name in ("threads", "processes", "sync"):
        from dask.diagnostics import ProgressBar

        with dask.config.set(scheduler=name), ProgressBar(out=sys.stderr):
            yield None
        return
    from distributed import Client

    with Client(name) as client:
        yield client


def _compute(client, *arrays):
    import dask

    if client is None:
        return dask.compute(*arrays)
    from distributed import progress

    futures = client.compute(list(arrays))
    progress(futures)
    return client.gather(futures)


def cmd_run(args) -> int:
    from . import simulate

    spec = load_spec(args.spec)
    start = time.perf_counter()
    rec = simulate(spec, until=args.until, chunks=args.chunks)
    with scheduler(args.scheduler):
        rec.to_zarr(args.output, mode="resume" if args.resume else "w")
    print(f"wrote {args.output}: {_describe(rec)} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_video(args) -> int:
    from . import simulate

    spec = load_spec(args.spec)
    rec = simulate(spec, until=args.until, chunks=args.chunks)
    rec.write_video(args.output, vmax=args.vmax, vmin=args.vmin, fps=args.fps, codec=args.codec)
    print(f"wrote {args.output}: {rec.observed.shape[0]} frames")
    return 0


def _parse_axis(text: str):
    if "=" not in text:
        raise UsageError(f"--axis {text!r}: write PATH=V1,V2,... (e.g. seed=0,1,2)")
    path, values = text.split("=", 1)
    parsed = []
    for value in values.split(","):
        try:
            parsed.append(json.loads(value))
        except json.JSONDecodeError:
            parsed.append(value)
    return path, parsed


def cmd_dataset(args) -> int:
    from . import generate, sweep

    base = load_spec(args.spec)
    axes = dict(_parse_axis(a) for a in args.axis)
    try:
        specs = list(sweep(base, axes))
    except ValueError as err:
        raise UsageError(str(err)) from err
    with scheduler(args.scheduler) as client:
        manifest = generate(specs, args.output, client=client, chunks=args.chunks)
    print(f"{len(specs)} recordings in {args.output} (manifest: {manifest})")
    return 0


def cmd_info(args) -> int:
    import zarr

    from .persist import COMPLETE_ATTR, open_recording

    try:
        group = zarr.open_group(args.store, mode="r", zarr_format=3)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
        raise UsageError(f"{args.store} is not a minisim store") from err
    if not group.attrs.get(COMPLETE_ATTR, False):
        print(
            f"{args.store}: INCOMPLETE write (finish it with `minisim run SPEC -o {args.store} --resume`)"
        )
        return 1
    rec = open_recording(args.store)
    ds = rec.dataset
    spec = rec.spec
    print(f"{args.store}: {_describe(rec)}")
    print(f"  spec {ds.attrs['cache_key']} (seed {spec.seed}), minisim {ds.attrs.get('minisim_version')}, "
          f"format {ds.attrs['format_version']}")  # fmt: skip
    print(f"  steps: {', '.join(s.kind for s in spec.steps)}")
    print(f"  observed {ds['observed'].dtype}, {len(ds['observed'].chunks[0])} chunks of "
          f"{ds['observed'].chunks[0][0]} frames")  # fmt: skip
    if "focal_depth_um" in ds.attrs:
        print(f"  focal plane {ds.attrs['focal_depth_um']:.1f} µm")
    truth = sorted(n for n in ds.variables if n not in ("observed",) and n not in ds.dims)
    print(f"  ground truth: {', '.join(truth)}")
    return 0


def _describe(rec) -> str:
    ds = rec.dataset
    n, h, w = ds["observed"].shape
    return f"{ds.sizes['cell']} cells, {n} frames of {h}×{w} px ({ds['observed'].nbytes / 2**30:.2f} GiB)"


def cmd_demo(args) -> int:
    import dask.array as da

    from . import simulate

    spec = demo_spec(args.duration, args.px, args.seed)
    start = time.perf_counter()
    rec = simulate(spec, chunks=args.chunks)
    built = time.perf_counter() - start
    obs = rec.observed.data
    print(
        f"minisim demo: {_describe(rec)}, {len(obs.chunks[0])} chunks; graph built in {built:.2f} s"
    )
    start = time.perf_counter()
    with scheduler(args.scheduler) as client:
        peak, mean, detectable = _compute(
            client, obs.max(), obs.mean(), da.asarray(rec.ground_truth.detectable.data).sum()
        )
    elapsed = time.perf_counter() - start
    print(
        f"computed in {elapsed:.1f} s ({obs.shape[0] / elapsed:.0f} frames/s): mean count "
        f"{float(mean):.1f}, peak {int(peak)}, {int(detectable)} of {rec.ground_truth.n_units} cells detectable"
    )
    return 0


def cmd_notebooks(args) -> int:
    from .explore.notebooks import copy_notebooks, notebook_paths

    if args.action == "list":
        for name, path in notebook_paths().items():
            print(f"{name:10s} {path}")
        return 0
    if args.directory is None:
        raise UsageError("notebooks copy needs a directory: minisim notebooks copy DIR")
    copied, skipped = copy_notebooks(args.directory)
    for path in skipped:
        print(f"skipped {path}: it already exists (minisim never overwrites your files)")
    print(f"copied {len(copied)} notebook(s) into {args.directory}")
    return 0


def cmd_explore(args) -> int:
    try:
        from .explore.studio import require_panel, serve

        require_panel()
    except ImportError as err:  # the explore extra is missing
        raise UsageError(str(err)) from err
    spec = load_spec(args.spec) if args.spec else None
    print(f"minisim studio on http://127.0.0.1:{args.port}/ (Ctrl-C to stop)", flush=True)
    try:
        serve(spec, port=args.port, show=not args.no_browser)
    except KeyboardInterrupt:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="minisim",
        description="Simulate one-photon miniscope recordings with exact ground truth.",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, spec=True):
        if spec:
            p.add_argument("spec", help="spec JSON file (Spec.model_dump_json())")
        p.add_argument("--chunks", type=int, default=None, help="frames per chunk (default auto)")
        p.add_argument("--scheduler", default="threads",
                       help="threads (default), processes, sync, or a dask scheduler address")  # fmt: skip

    run = sub.add_parser(
        "run", help="simulate a spec into a Zarr store", epilog=EXAMPLES, formatter_class=fmt
    )
    common(run)
    run.add_argument("-o", "--output", required=True, help="store path or fsspec URL")
    run.add_argument("--until", default=None, help="stop after this stage")
    run.add_argument("--resume", action="store_true", help="finish an interrupted write")
    run.set_defaults(func=cmd_run)

    video = sub.add_parser(
        "video", help="simulate a spec into a video file", epilog=EXAMPLES, formatter_class=fmt
    )
    video.add_argument("spec")
    video.add_argument("-o", "--output", required=True)
    video.add_argument("--chunks", type=int, default=None)
    video.add_argument("--until", default=None)
    video.add_argument(
        "--vmax", type=float, default=None, help="white point (required without a sensor)"
    )
    video.add_argument("--vmin", type=float, default=0.0)
    video.add_argument("--fps", type=float, default=None)
    video.add_argument(
        "--codec", default="ffv1", help="ffv1 (lossless, default) or any ffmpeg codec"
    )
    video.set_defaults(func=cmd_video)

    dataset = sub.add_parser("dataset", help="a sweep of recordings into one archive", epilog=EXAMPLES,
                             formatter_class=fmt)  # fmt: skip
    common(dataset)
    dataset.add_argument("--axis", action="append", default=[], help="PATH=V1,V2,... (repeatable)")
    dataset.add_argument("-o", "--output", required=True, help="archive directory")
    dataset.set_defaults(func=cmd_dataset)

    info = sub.add_parser(
        "info", help="describe a stored recording", epilog=EXAMPLES, formatter_class=fmt
    )
    info.add_argument("store")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="simulate the full chain and print a summary", epilog=EXAMPLES,
                          formatter_class=fmt)  # fmt: skip
    common(demo, spec=False)
    demo.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    demo.add_argument("--px", type=int, default=200, help="field of view in pixels (default 200)")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_demo)

    notebooks = sub.add_parser("notebooks", help="list the bundled notebooks or copy them to DIR")
    notebooks.add_argument("action", choices=["list", "copy"])
    notebooks.add_argument("directory", nargs="?", help="where to copy (never overwrites)")
    notebooks.set_defaults(func=cmd_notebooks)

    explore = sub.add_parser("explore", help="the studio in the browser: design, preview, generate")
    explore.add_argument(
        "spec", nargs="?", help="spec JSON to start from (default: the full chain)"
    )
    explore.add_argument("--port", type=int, default=5006, help="port on 127.0.0.1 (default 5006)")
    explore.add_argument("--no-browser", action="store_true", help="do not open a browser")
    explore.set_defaults(func=cmd_explore)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"minisim: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # invalid values (pydantic errors are ValueErrors too)
        print(f"minisim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
