"""Integrity of a stored recording: what a complete store holds, and reads that never lie.

Three layers, each cheap where it runs:

* **Checksums.** Every chunk of every array ends with zarr's ``crc32c`` codec, so flipped
  or truncated bytes fail to decode instead of decoding into different numbers.
* **Contents.** Completion records, per array, its shape, chunk shape and number of chunks
  (:func:`contents_of`). Opening a store lists its keys (a listing, no chunk is read) and
  refuses one that lacks any chunk or array the record promises (:func:`check_contents`).
* **Strict reads.** Zarr returns the fill value for a chunk that is not there; a recording
  reopened by minisim reads through :class:`StrictStore`, which raises instead, and every
  read names the variable and the chunk that failed (:func:`checked_array`).

:func:`verify` reads and checks every chunk (``minisim verify``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import zarr
from zarr.abc.store import Store
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.core.sync import sync
from zarr.storage import WrapperStore

#: Root attribute written at completion: per array, what a complete store holds.
CONTENTS_ATTR = "minisim_contents"


class DamagedStoreError(OSError):
    """A stored recording is damaged: a chunk or an array is missing, or fails its checksum."""


class MissingChunkError(DamagedStoreError):
    """A chunk that a complete store must hold is not there."""


def chunk_compressors() -> tuple:
    """The bytes-to-bytes codecs of every stored array: zarr's default compressor, then a
    crc32c checksum over the compressed bytes (so damage is caught before decompression)."""
    return (ZstdCodec(level=0), Crc32cCodec())


class StrictStore(WrapperStore):
    """A read-only view of a store in which a missing chunk is an error, not fill values."""

    async def get(self, key, prototype, byte_range=None):
        value = await self._store.get(key, prototype, byte_range)
        if value is None and _is_chunk_key(key):
            raise MissingChunkError(f"chunk {key} is missing")
        return value


def _is_chunk_key(key: str) -> bool:
    parts = key.split("/")
    return "c" in parts[1:] and not key.endswith("zarr.json")


def _chunk_grid(array) -> tuple[int, ...]:
    return tuple(math.ceil(s / c) for s, c in zip(array.shape, array.chunks, strict=True))


def contents_of(group: zarr.Group) -> dict:
    """What a complete store holds: per array, its shape, chunks and number of chunks."""
    record = {}
    for name, array in sorted(group.arrays()):
        record[name] = {
            "shape": list(array.shape),
            "chunks": list(array.chunks),
            "n_chunks": math.prod(_chunk_grid(array)),
        }
    return record


def _expected_keys(name: str, info: dict) -> set[str]:
    grid = [
        math.ceil(s / c) if c else 0 for s, c in zip(info["shape"], info["chunks"], strict=True)
    ]
    if not grid:
        return {f"{name}/c"}
    return {f"{name}/c/" + "/".join(map(str, idx)) for idx in itertools.product(*map(range, grid))}


def list_keys(store: Store) -> set[str]:
    """Every key of a store (one listing; no value is read)."""

    async def collect():
        return {key async for key in store.list()}

    return sync(collect())


def missing_from(store: Store, contents: dict) -> dict[str, list[str]]:
    """Per array, the keys the contents record promises but the store's listing lacks."""
    present = list_keys(store)
    missing = {}
    for name, info in contents.items():
        lost = sorted(k for k in _expected_keys(name, info) if k not in present)
        if f"{name}/zarr.json" not in present:
            lost.insert(0, f"{name}/zarr.json")
        if lost:
            missing[name] = lost
    return missing


def check_contents(store: Store, contents: dict | None, where) -> None:
    """Raise :class:`MissingChunkError` unless every array and chunk of ``contents`` exists."""
    if contents is None:
        raise DamagedStoreError(
            f"{where} is flagged complete but records no contents: it was not written by "
            "this minisim version or its metadata was edited; re-simulate it from its spec"
        )
    missing = missing_from(store, contents)
    if missing:
        raise MissingChunkError(f"{where} is damaged: missing {_summarize(missing)}")


def _summarize(missing: dict[str, list[str]], shown: int = 3) -> str:
    parts = []
    for name, keys in missing.items():
        listed = ", ".join(_chunk_label(k) for k in keys[:shown])
        more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
        parts.append(f"{name} ({listed}{more})")
    return "; ".join(parts)


def _chunk_label(key: str) -> str:
    tail = key.split("/", 1)[1]
    if tail == "zarr.json":
        return "its metadata"
    indices = tail.split("/")[1:]
    return f"chunk ({', '.join(indices)})" if indices else "its chunk"


class _CheckedChunks:
    """What dask reads a stored array through: each read is one zarr chunk, and any
    failure is reported with the variable's name and the chunk's index."""

    def __init__(self, array: zarr.Array, name: str, where: str):
        self.array, self.name, self.where = array, name, where
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key):
        try:
            return self.array[key]
        except Exception as err:
            index = tuple((s.start or 0) // c for s, c in zip(key, self.array.chunks, strict=False))
            raise DamagedStoreError(
                f"{self.where}: variable {self.name!r}, chunk {index}: {_reason(err)}; "
                "run `minisim verify` on the store, then re-simulate it from its spec"
            ) from err


def _reason(err: Exception) -> str:
    if isinstance(err, MissingChunkError):
        return "the chunk is missing"
    if "checksum" in str(err).lower():
        return "its bytes fail their crc32c checksum"
    return f"it cannot be decoded ({type(err).__name__}: {err})"


def checked_array(array: zarr.Array, name: str, where: str) -> da.Array:
    """A lazy dask array over a stored array, one task per zarr chunk, with damage named."""
    return da.from_array(
        _CheckedChunks(array, name, where),
        chunks=array.chunks if array.ndim else (),
        name=f"read-{name}-{da.core.tokenize(where, name)}",
        meta=np.empty((0,) * array.ndim, dtype=array.dtype),
        asarray=True,
        inline_array=True,
    )


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`: every chunk read and checked."""

    store: str
    chunks_checked: int = 0
    damaged: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.damaged

    def __str__(self) -> str:
        if self.ok:
            return f"{self.store}: OK, {self.chunks_checked} chunks verified"
        return f"{self.store}: DAMAGED: " + "; ".join(
            f"{name}: {', '.join(problems[:5])}"
            + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
            for name, problems in self.damaged.items()
        )


def verify_group(group: zarr.Group, contents: dict, where: str, progress: bool) -> VerifyReport:
    """Read every chunk the contents record promises; collect what is missing or corrupt."""
    report = VerifyReport(str(where))
    report.damaged.update(missing_from(group.store, contents))
    total = sum(info["n_chunks"] for info in contents.values())
    bar = _progress(total, str(where)) if progress else None
    try:
        for name, info in contents.items():
            if name in report.damaged:
                if bar is not None:
                    bar.update(info["n_chunks"])
                continue
            array = group[name]
            for index in itertools.product(*map(range, _chunk_grid(array))):
                region = tuple(
                    slice(i * c, min((i + 1) * c, s))
                    for i, c, s in zip(index, array.chunks, array.shape, strict=True)
                )
                try:
                    array[region]
                except Exception as err:
                    report.damaged.setdefault(name, []).append(f"chunk {index}: {_reason(err)}")
                report.chunks_checked += 1
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return report


def _progress(total: int, label: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - progress is optional
        return None
    return tqdm(total=total, unit="chunk", desc=f"verifying {label}", leave=False)
