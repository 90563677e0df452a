"""Grayscale video export, streamed chunk by chunk (PyAV, the ``video`` extra).

Frames map to 8 bits as ``floor(clip((x − vmin)/(vmax − vmin), 0, 1)·255 + 0.5)``; with
an 8-bit sensor and the default range that is the identity, and the default codec is
lossless, so decoding the file gives back the counts exactly.

The default codec is ``rawvideo``: uncompressed 8-bit gray (FourCC ``Y800`` in an AVI),
which ImageJ's built-in AVI reader opens, as do Fiji, OpenCV and ffmpeg. ``"ffv1"`` is
lossless too and several times smaller, but ImageJ cannot read it.

Trust: the file is written under a hidden sibling name and renamed onto the target only
when whole, and a target that exists is replaced only if it is a video minisim wrote
(recognised by the ``comment`` tag of its container, ``"minisim <version> ..."``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import dask.array as da
import numpy as np
from dask import delayed

#: The default: uncompressed 8-bit gray, readable by ImageJ's built-in AVI reader.
DEFAULT_CODEC = "rawvideo"
#: Container formats by file suffix (the file is written under a temporary name, so the
#: format cannot be guessed from it).
CONTAINERS = {".avi": "avi", ".mkv": "matroska", ".mp4": "mp4", ".mov": "mov",
              ".webm": "webm", ".nut": "nut"}  # fmt: skip
#: Start of the container's ``comment`` tag in every video minisim writes.
SIGNATURE = "minisim"


def container_format(path: Path) -> str:
    """The container of a video file name, from its suffix."""
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"video path {path}: unknown suffix {path.suffix!r}; use one of "
            f"{', '.join(CONTAINERS)} (.avi with the default rawvideo codec opens in ImageJ)"
        ) from None


def is_minisim_video(path: Path) -> bool:
    """A video file whose container's comment tag says minisim wrote it."""
    av = _import_av()
    try:
        with av.open(str(path)) as container:
            tags = {k.lower(): v for k, v in container.metadata.items()}
    except Exception:  # not a video PyAV can open: not ours
        return False
    return str(tags.get("comment", "")).startswith(SIGNATURE)


#: FourCC names other tools (and minisim 1.0) use, and the ffmpeg codec each one means:
#: ``"Y800"`` is uncompressed 8-bit grayscale, ``"MJPG"`` is motion JPEG (lossy).
CODEC_ALIASES = {"Y800": "rawvideo", "MJPG": "mjpeg", "FFV1": "ffv1"}


def resolve_codec(codec: str) -> str:
    """The ffmpeg codec name for ``codec`` (a FourCC alias or an ffmpeg name)."""
    return CODEC_ALIASES.get(codec, CODEC_ALIASES.get(codec.upper(), codec))


def _pixel_format(av, codec: str) -> str:
    """``"gray"`` when the codec stores it (every lossless one here); otherwise the codec's
    first pixel format (motion JPEG stores YUV), converted per frame."""
    formats = av.codec.Codec(codec, "w").video_formats
    names = [f.name for f in formats] if formats else []
    return "gray" if not names or "gray" in names else names[0]


def to_uint8(frames: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Map intensities to 0–255 with rounding; ``vmax == vmin`` maps with a span of 1."""
    span = (vmax - vmin) or 1.0
    scaled = np.clip((frames.astype(np.float64) - vmin) / span, 0.0, 1.0)
    return np.floor(scaled * 255 + 0.5).astype(np.uint8)


def _import_av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            'writing video needs PyAV: pip install ".[video]" in the minisim source tree'
        ) from err
    return av


class _OrderedEncoder:
    """A dask ``store`` target that encodes frame chunks in order, whatever order they come in.

    Chunks finished early wait in a small buffer until the frames before them are written,
    so the movie streams through in bounded memory.
    """

    def __init__(
        self, path: Path, shape, fps: float, codec: str, vmin: float, vmax: float, progress,
        container_format: str = "avi",
    ):  # fmt: skip
        av = _import_av()
        self._av = av
        self.container = av.open(str(path), "w", format=container_format)
        self.container.metadata["comment"] = f"{SIGNATURE} {_version()} (8-bit gray)"
        self.stream = self.container.add_stream(codec, rate=_rate(fps))
        self.stream.width, self.stream.height = shape[2], shape[1]
        self.pix_fmt = _pixel_format(av, codec)
        self.stream.pix_fmt = self.pix_fmt
        self.vmin, self.vmax = vmin, vmax
        self.next_frame = 0
        self.pending: dict[int, np.ndarray] = {}
        self.progress = progress
        self.lock = threading.Lock()
        self.shape = shape
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3

    def __setitem__(self, key, block):
        start = key[0].start or 0
        with self.lock:
            self.pending[start] = to_uint8(np.asarray(block), self.vmin, self.vmax)
            while self.next_frame in self.pending:
                frames = self.pending.pop(self.next_frame)
                for frame in frames:
                    video_frame = self._av.VideoFrame.from_ndarray(frame, format="gray")
                    if self.pix_fmt != "gray":
                        video_frame = video_frame.reformat(format=self.pix_fmt)
                    for packet in self.stream.encode(video_frame):
                        self.container.mux(packet)
                self.next_frame += len(frames)
                if self.progress is not None:
                    self.progress.update(len(frames))

    def close(self):
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def _rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1000)


def write_movie(
    movie: da.Array,
    path,
    *,
    fps: float,
    vmin: float = 0.0,
    vmax: float,
    codec: str = DEFAULT_CODEC,
    progress: bool = True,
) -> Path:
    """Stream a lazy (frame, y, x) movie into a grayscale video file.

    The path must be absent or a video minisim wrote (anything else is refused and left
    untouched); the file appears only when whole.
    """
    from .outputs import atomic_file

    path = Path(path)
    codec = resolve_codec(codec)
    fmt = container_format(path)
    if movie.shape[0] == 0:
        raise ValueError("the movie has no frames to write")
    _import_av()
    with atomic_file(path, is_ours=is_minisim_video, what="video") as partial:
        bar = _progress_bar(movie.shape[0], path.name) if progress else None
        encoder = _OrderedEncoder(partial, movie.shape, fps, codec, vmin, vmax, bar, fmt)
        try:
            client = _distributed_client()
            if client is None:
                _store_in_order(movie, encoder)
            else:
                _store_from_cluster(client, movie, encoder)
        except BaseException:
            encoder.container.close()  # atomic_file then removes the partial file
            raise
        finally:
            if bar is not None:
                bar.close()
        encoder.close()
    return path


def _version() -> str:
    from ..version import __version__

    return __version__


def _store_in_order(movie: da.Array, encoder: _OrderedEncoder) -> None:
    """Encode chunk k only after chunk k − 1: a chain the scheduler follows front to back,
    so finished chunks never pile up waiting for an earlier one. The encoder lives in this
    process, so this runs on local threads."""
    starts = np.concatenate([[0], np.cumsum(movie.chunks[0])[:-1]])
    written = None
    for start, block in zip(starts, movie.to_delayed(optimize_graph=False).ravel(), strict=True):
        written = delayed(_encode_after, pure=False)(encoder, int(start), block, written)
    written.compute(scheduler="threads")


def _encode_after(encoder, start, block, _previous):
    encoder[(slice(start, None),)] = block


def _distributed_client():
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def _store_from_cluster(client, movie: da.Array, encoder: _OrderedEncoder) -> None:
    """Compute chunks on the cluster and encode them here as they arrive."""
    from distributed import as_completed

    starts = np.concatenate([[0], np.cumsum(movie.chunks[0])[:-1]])
    blocks = movie.to_delayed().ravel()
    futures = client.compute(list(blocks))
    index = {future.key: k for k, future in enumerate(futures)}
    for future in as_completed(futures):
        k = index[future.key]
        encoder[(slice(int(starts[k]), None),)] = future.result()
        future.release()


def _progress_bar(total: int, label: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - progress is optional
        return None
    return tqdm(total=total, unit="frame", desc=f"writing {label}", leave=False)


def read_video(path) -> np.ndarray:
    """Decode a grayscale video into a (frame, y, x) uint8 array (for checks and tests)."""
    av = _import_av()
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="gray") for frame in container.decode(video=0)])
