"""Versions of the package and of its stored layout, importable from anywhere inside it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("minisim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

#: Version of the stored layout (names, dims, attrs, checksums, contents record). Bump on any
#: incompatible change (2: crc32c on every chunk and a contents record at completion).
FORMAT_VERSION = 2
