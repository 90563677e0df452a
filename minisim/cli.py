"""The ``minisim`` command line: run, video, dataset, info, verify, demo."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

EXAMPLES = """examples:
  minisim demo                                   the full chain (200×200 px, 20 s), locally
  minisim spec --preset v4-ca1 -o spec.json      a starter spec to edit
  minisim run spec.json -o rec.zarr --chunks 256
  minisim run spec.json -o rec.zarr --scheduler tcp://scheduler:8786
  minisim video spec.json -o rec.avi
  minisim dataset base.json --axis acquisition.optics.na=0.3,0.45 --axis seed=0,1,2 -o archive/
  minisim info rec.zarr
  minisim verify rec.zarr                        read every chunk, exit 1 on damage
  minisim export rec.zarr --to nwb -o rec.nwb      (or --to tiff|minian|avi)
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
        raise UsageError(f"invalid spec in {path}: {one_line(err)}") from err


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
    if args.profile and args.resume:
        raise UsageError("--profile times a whole write: drop --resume (or --profile)")
    rec = simulate(spec, until=args.until, chunks=args.chunks)
    with scheduler(args.scheduler) as client:
        if args.profile:
            profile = rec.profile(args.output)
        else:  # locally the scheduler's bar is on; on a cluster, distributed's
            rec.to_zarr(args.output, mode="resume" if args.resume else "w",
                        progress=client is not None)  # fmt: skip
    print(f"wrote {args.output}: {_describe(rec)} in {time.perf_counter() - start:.1f} s")
    if args.profile:
        print(profile)
    return 0


def cmd_video(args) -> int:
    from . import simulate

    spec = load_spec(args.spec)
    rec = simulate(spec, until=args.until, chunks=args.chunks)
    from .io.outputs import OutputPathError

    try:
        rec.write_video(args.output, vmax=args.vmax, vmin=args.vmin, fps=args.fps, codec=args.codec)
    except OutputPathError as err:
        raise UsageError(str(err)) from err
    print(f"wrote {args.output}: {rec.observed.shape[0]} frames")
    return 0


def _parse_axis(text: str):
    if "=" not in text:
        raise UsageError(f"--axis {text!r}: write PATH=V1,V2,... (e.g. seed=0,1,2)")
    path, values = text.split("=", 1)
    if not path or not values:
        raise UsageError(f"--axis {text!r}: write PATH=V1,V2,... (e.g. seed=0,1,2)")
    parsed = []
    for value in values.split(","):
        try:
            parsed.append(json.loads(value))
        except json.JSONDecodeError:
            parsed.append(value)
    seen = []
    for value in parsed:
        if value in seen:
            raise UsageError(
                f"--axis {path}: the value {value!r} is listed twice; each swept value makes "
                "one recording, so list it once"
            )
        seen.append(value)
    return path, parsed


def parse_axes(texts) -> dict:
    """``--axis`` options as {path: values}; a path given twice is an error."""
    axes: dict = {}
    for text in texts:
        path, values = _parse_axis(text)
        if path in axes:
            raise UsageError(
                f"--axis {path} is given twice: list all its values in one option "
                f"(--axis {path}=V1,V2,...)"
            )
        axes[path] = values
    return axes


def cmd_dataset(args) -> int:
    from . import generate, sweep

    base = load_spec(args.spec)
    axes = parse_axes(args.axis)
    try:
        specs = list(sweep(base, axes))
    except ValueError as err:
        raise UsageError(str(err)) from err
    with scheduler(args.scheduler) as client:
        manifest = generate(specs, args.output, client=client, chunks=args.chunks,
                            progress=client is not None)  # fmt: skip
    print(f"{len(specs)} recordings in {args.output} (manifest: {manifest})")
    return 0


def cmd_info(args) -> int:
    from .io.integrity import DamagedStoreError
    from .io.zarr_store import IncompleteStoreError, open_recording, verify

    try:
        rec = open_recording(args.store)
    except IncompleteStoreError:
        print(f"{args.store}: INCOMPLETE write (finish it with "
              f"`minisim run SPEC -o {args.store} --resume`)")  # fmt: skip
        return 1
    except DamagedStoreError as err:
        print(f"{args.store}: DAMAGED: {err}")
        return 1
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"{args.store} is not a minisim store: {err}") from err
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
    if not args.verify:
        print("  integrity: every chunk is present (listing); checksums are checked on every "
              "read, and all at once by `minisim verify` or `minisim info --verify`")  # fmt: skip
        return 0
    report = verify(args.store, progress=True)
    print(f"  integrity: {report}")
    return 0 if report.ok else 1


def cmd_verify(args) -> int:
    from .io.zarr_store import IncompleteStoreError, verify

    try:
        report = verify(args.store, progress=not args.quiet)
    except IncompleteStoreError as err:
        print(f"minisim: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"{args.store} is not a minisim store: {err}") from err
    print(report, file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def cmd_export(args) -> int:
    """Reopen a store and write it in another tool's format (progress bar on stderr)."""
    from .io.outputs import OutputPathError
    from .io.zarr_store import open_recording

    try:
        rec = open_recording(args.store)
        cells = {"include_margin": args.include_margin}
        writer = {"nwb": lambda out: rec.to_nwb(out, **cells), "tiff": rec.to_tiff,
                  "avi": rec.write_video,
                  "minian": lambda out: rec.to_minian(out, videos=args.videos, **cells)}[args.to]  # fmt: skip
        writer(args.output)
    except (OutputPathError, ImportError, OSError, RuntimeError) as err:
        raise UsageError(str(err).splitlines()[0]) from err
    print(f"wrote {args.output}: {_describe(rec)} as {args.to}")
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
            # the Dataset's flag (only cells in the field can be detectable), so the count
            # is computed with the movie, on the chosen scheduler
            client,
            obs.max(),
            obs.mean(),
            da.asarray(rec.dataset["detectable"].data).sum(),
        )
    elapsed = time.perf_counter() - start
    print(
        f"computed in {elapsed:.1f} s ({obs.shape[0] / elapsed:.0f} frames/s): mean count "
        f"{float(mean):.1f}, peak {int(peak)}, {int(detectable)} of {rec.ground_truth.n_units} cells detectable"
    )
    print(NEXT_STEPS)
    return 0


NEXT_STEPS = """next:
  minisim spec --preset v4-ca1 -o spec.json      a starter spec to edit (JSON)
  minisim run spec.json -o rec.zarr              simulate it into a verified Zarr store
  minisim export rec.zarr --to nwb -o rec.nwb    or --to tiff|minian|avi
  minisim explore spec.json                      design and preview it in the browser"""

#: Starter specs: a scope imaging a region (see minisim.presets), 20 s at 20 fps.
SPEC_PRESETS = {
    "v4-ca1": ("miniscope_v4", "ca1"),
    "v4-cortex": ("miniscope_v4", "cortex_l23"),
    "generic": ("generic_1p", "ca1"),
}


def cmd_spec(args) -> int:
    from . import presets

    scope, region = SPEC_PRESETS[args.preset]
    spec = presets.build_spec(getattr(presets, scope)(), getattr(presets, region)(),
                              duration_s=args.duration, seed=args.seed)  # fmt: skip
    text = spec.model_dump_json(indent=2)
    if args.output is None:
        print(text)
        return 0
    from .io.outputs import atomic_file

    def is_ours(path: Path) -> bool:  # only a spec file minisim wrote may be replaced
        try:
            from .spec import Spec

            return Spec.model_validate_json(path.read_text()) is not None
        except Exception:
            return False

    with atomic_file(args.output, is_ours=is_ours, what="spec") as partial:
        partial.write_text(text + "\n")
    print(f"wrote {args.output}: {args.preset} ({scope} imaging {region}), {args.duration:g} s; "
          f"edit it, then: minisim run {args.output} -o rec.zarr")  # fmt: skip
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
    parser = _OneLineParser(
        prog="minisim",
        description="Simulate one-photon miniscope recordings with exact ground truth.",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    def common(p, spec=True):
        if spec:
            p.add_argument("spec", help="spec JSON file (Spec.model_dump_json())")
        p.add_argument("--chunks", type=_chunks, default=None,
                       help="frames per chunk (default auto; -1: one chunk)")  # fmt: skip
        p.add_argument("--scheduler", default="threads",
                       help="threads (default), processes, sync, or a dask scheduler address")  # fmt: skip

    run = sub.add_parser(
        "run", help="simulate a spec into a Zarr store", epilog=EXAMPLES, formatter_class=fmt
    )
    common(run)
    run.add_argument("-o", "--output", required=True, help="store path or fsspec URL")
    run.add_argument("--until", default=None, help="stop after this stage")
    run.add_argument("--resume", action="store_true", help="finish an interrupted write")
    run.add_argument(
        "--profile",
        action="store_true",
        help="time each step's kernels and the writing, and print the table",
    )
    run.set_defaults(func=cmd_run)

    video = sub.add_parser(
        "video", help="simulate a spec into a video file", epilog=EXAMPLES, formatter_class=fmt
    )
    video.add_argument("spec")
    video.add_argument("-o", "--output", required=True)
    video.add_argument("--chunks", type=_chunks, default=None)
    video.add_argument("--until", default=None)
    video.add_argument(
        "--vmax", type=_finite, default=None, help="white point (required without a sensor)"
    )
    video.add_argument("--vmin", type=_finite, default=0.0)
    video.add_argument("--fps", type=_positive(float), default=None)
    video.add_argument(
        "--codec",
        default="rawvideo",
        help="rawvideo (uncompressed gray, ImageJ reads it; default), ffv1 (lossless, smaller)",
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
    info.add_argument("--verify", action="store_true", help="also read and check every chunk")
    info.set_defaults(func=cmd_info)

    check = sub.add_parser(
        "verify", help="read and checksum every chunk of a store; exit 1 on any damage",
        epilog=EXAMPLES, formatter_class=fmt,
    )  # fmt: skip
    check.add_argument("store", help="store path or fsspec URL")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=cmd_verify)

    export = sub.add_parser("export", help="write a stored recording as NWB, TIFF, minian or AVI",
                            epilog=EXAMPLES, formatter_class=fmt)  # fmt: skip
    export.add_argument("store", help="a minisim store (minisim run -o STORE)")
    export.add_argument("--to", required=True, choices=["nwb", "tiff", "minian", "avi"])
    export.add_argument("-o", "--output", required=True, help="file (nwb, tiff, avi) or folder")
    export.add_argument("--videos", action="store_true", help="minian: also msCam1.avi, ...")
    export.add_argument("--include-margin", action="store_true",
                        help="nwb, minian: also the margin cells simulated around the field")  # fmt: skip
    export.set_defaults(func=cmd_export)

    starter = sub.add_parser("spec", help="print or write a starter spec to edit",
                             epilog=EXAMPLES, formatter_class=fmt)  # fmt: skip
    starter.add_argument("--preset", choices=sorted(SPEC_PRESETS), default="v4-ca1",
                         help="scope and region (default v4-ca1: Miniscope V4 imaging CA1)")  # fmt: skip
    starter.add_argument("-o", "--output", default=None, help="JSON file (default: print it)")
    starter.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    starter.add_argument("--seed", type=int, default=0)
    starter.set_defaults(func=cmd_spec)

    demo = sub.add_parser("demo", help="simulate the full chain and print a summary", epilog=EXAMPLES,
                          formatter_class=fmt)  # fmt: skip
    common(demo, spec=False)
    demo.add_argument("--duration", type=_positive(float), default=20.0,
                      help="seconds (default 20)")  # fmt: skip
    demo.add_argument("--px", type=_positive(int), default=200,
                      help="field of view in pixels (default 200)")  # fmt: skip
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


def one_line(err: BaseException) -> str:
    """An error as one line: a pydantic ValidationError names each field, value and rule."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        parts = []
        for e in err.errors(include_url=False):
            where = ".".join(str(p) for p in e["loc"]) or "spec"
            message = e["msg"].removeprefix("Value error, ")
            if e["type"] == "value_error":  # our own rules already name field and value
                parts.append(message)
            elif e["type"] == "json_invalid":
                parts.append(message)
            else:
                value = e.get("input")
                shown = repr(value) if not isinstance(value, (dict, list, tuple)) else "…"
                shown = shown if len(shown) <= 40 else shown[:37] + "…"
                parts.append(f"{where}={shown}: {message}")
        return "; ".join(parts)
    text = str(err) or type(err).__name__
    return " ".join(text.split())


def _positive(kind):
    """argparse type: a number > 0 (``--fps 0`` and ``--chunks -3`` fail at parse time)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'}"
            ) from None
        if not (value > 0 and value == value and value != float("inf")):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be finite")
    return value


def _chunks(text: str) -> int:
    """Frames per chunk: a positive integer, or -1 for one chunk."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(
            f"{value} frames per chunk: give a positive number of frames (or -1 for one chunk)"
        )
    return value


def check_args(args) -> None:
    """Cross-option rules argparse cannot express."""
    vmin, vmax = getattr(args, "vmin", None), getattr(args, "vmax", None)
    if vmin is not None and vmax is not None and vmin >= vmax:
        raise UsageError(f"--vmin {vmin:g} must be below --vmax {vmax:g} (the white point)")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is in --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    if argv is None:  # the `minisim` program: this process is ours to tune
        from .engine.allocator import reuse_freed_arrays

        reuse_freed_arrays()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        check_args(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("minisim: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        code = 2 if isinstance(err, (UsageError, ValueError)) else 1
        kind = "" if code == 2 else f"{type(err).__name__}: "
        print(f"minisim: error: {kind}{one_line(err)} (--debug shows the traceback)",
              file=sys.stderr)  # fmt: skip
        return code


if __name__ == "__main__":
    sys.exit(main())
