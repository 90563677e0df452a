"""The installed package's version, importable from anywhere inside the package."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("minisim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
