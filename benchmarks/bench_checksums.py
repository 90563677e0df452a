"""What the store's integrity costs: crc32c on every chunk, and the checks on open.

Usage::

    python benchmarks/bench_checksums.py                 # 512 px full chain, 60 s
    python benchmarks/bench_checksums.py --duration 30 --repeats 5

The full rung-6 chain at 512x512 px is computed once into memory, then written to Zarr
alternately with the store's codecs (zstd, then crc32c) and with zstd alone, so the
difference is the checksum and nothing else (simulation noise is out of the comparison).
Reported: median write time of each, frames/s, the ratio; the time of ``open_recording``
(listing check) and of ``verify`` (reads every chunk) on the written store; and, for
scale, one full-chain ``simulate(spec).to_zarr(path)`` with checksums.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--px", type=int, default=512)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from zarr.codecs import ZstdCodec

    import minisim
    from minisim.io import zarr_store

    spec = make_spec(args.px, args.duration)
    with_crc = zarr_store.chunk_compressors

    def zstd_only():
        return (ZstdCodec(level=0),)

    tmp = Path(tempfile.mkdtemp(prefix="bench-checksums-"))
    try:
        start = time.perf_counter()
        minisim.simulate(spec).to_zarr(tmp / "chain.zarr")
        chain_s = time.perf_counter() - start
        memory = minisim.simulate(spec).compute()  # the same recording, held in memory
        n = memory.observed.shape[0]
        times = {"crc32c": [], "zstd only": []}
        for _ in range(args.repeats):
            for label, codecs in (("crc32c", with_crc), ("zstd only", zstd_only)):
                zarr_store.chunk_compressors = codecs
                path = tmp / f"{label.replace(' ', '_')}.zarr"
                shutil.rmtree(path, ignore_errors=True)
                start = time.perf_counter()
                memory.to_zarr(path)
                times[label].append(time.perf_counter() - start)
        zarr_store.chunk_compressors = with_crc
        start = time.perf_counter()
        minisim.open_recording(tmp / "chain.zarr")
        open_s = time.perf_counter() - start
        start = time.perf_counter()
        report = minisim.verify(tmp / "chain.zarr", progress=False)
        verify_s = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{args.px} px, {n} frames, full rung-6 chain")
    print(f"  simulate + to_zarr (with checksums): {chain_s:.1f} s ({n / chain_s:.0f} frames/s)")
    for label, values in times.items():
        med = statistics.median(values)
        print(f"  write from memory, {label:9s}: median {med:.2f} s of {len(values)} "
              f"({n / med:.0f} frames/s), min {min(values):.2f} max {max(values):.2f}")  # fmt: skip
    ratio = statistics.median(times["crc32c"]) / statistics.median(times["zstd only"])
    print(f"  checksum cost: x{ratio:.3f} of a write from memory")
    print(f"  open_recording (listing check): {open_s * 1000:.0f} ms")
    print(f"  verify ({report.chunks_checked} chunks): {verify_s:.1f} s "
          f"({n / verify_s:.0f} frames/s)")  # fmt: skip


if __name__ == "__main__":
    main()
