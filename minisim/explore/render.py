"""Pictures for the notebooks and the studio: numpy → PNG bytes, no pyplot state.

Matplotlib draws on private ``Figure`` objects (thread-safe, nothing left open), so the
studio's server can render from several sessions at once.
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["frame_png", "side_view_png"]


def _figure(width_in: float, height_in: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('pictures need matplotlib: pip install "minisim[explore]"') from err
    return Figure(figsize=(width_in, height_in), dpi=100)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def frame_png(
    frame: np.ndarray,
    *,
    vmax: float | None = None,
    title: str = "",
    cells: dict | None = None,
    shift: tuple[float, float] = (0.0, 0.0),
    size_in: float = 4.0,
) -> bytes:
    """A frame in grey as PNG bytes, optionally with ground-truth outlines.

    ``cells`` is :meth:`FramePreview.cells`; detectable cells in the field are outlined
    (moved by the true ``shift`` (dy, dx) in pixels), the others are not drawn.
    """
    from matplotlib.collections import EllipseCollection

    fig = _figure(size_in, size_in)
    ax = fig.add_axes((0, 0, 1, 0.93 if title else 1))
    vmax = float(np.max(frame)) if vmax is None else vmax
    ax.imshow(frame, cmap="gray", vmin=0, vmax=max(vmax, 1e-12), interpolation="nearest")
    if cells is not None:
        keep = cells["detectable"] & cells["in_fov"]
        diameters = 2 * cells["radius_px"][keep]
        centres = np.column_stack([cells["col"][keep] + shift[1], cells["row"][keep] + shift[0]])
        # One collection for all outlines (one artist, not one per cell: fast to draw).
        ax.add_collection(
            EllipseCollection(
                diameters, diameters, np.zeros_like(diameters), units="xy", offsets=centres,
                offset_transform=ax.transData, facecolors="none", edgecolors="lime",
                linewidths=0.6,
            )
        )  # fmt: skip
        ax.set_xlim(-0.5, frame.shape[1] - 0.5)
        ax.set_ylim(frame.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9, y=0.99)
    return _png(fig)


def side_view_png(cells: dict, focal_um: float | None, *, size_in=(4.0, 2.6)) -> bytes:
    """Cells as seen from the side (x vs depth), detectable ones in green, the focal plane."""
    fig = _figure(*size_in)
    ax = fig.add_axes((0.15, 0.18, 0.8, 0.72))
    det = cells["detectable"]
    ax.scatter(cells["x_um"][~det], cells["depth_um"][~det], s=3, c="0.6", label="other")
    ax.scatter(cells["x_um"][det], cells["depth_um"][det], s=4, c="tab:green", label="detectable")
    if focal_um is not None:
        ax.axhline(focal_um, color="tab:red", lw=1, label=f"focus {focal_um:.0f} µm")
    ax.invert_yaxis()
    ax.set_xlabel("x (µm)", fontsize=8)
    ax.set_ylabel("depth (µm)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title("side view", fontsize=9)
    return _png(fig)
