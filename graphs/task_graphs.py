"""The dask task graph of ladder rungs 1 and 2, drawn at the layer level.

``rec.observed.data`` is a dask array whose HighLevelGraph has one layer per lazy
operation the steps wired in; a layer's name starts with the kind of the step that
built it (``cell_activity-…``, ``composite-…``). Each layer is one box, placed left to
right by its longest chain of dependencies, with an arrow from every layer it reads.
Steps that do their (frame-independent) work eagerly while the graph is built add no
layer; they are listed under the diagram.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from minisim import Recording, simulate

from ._common import rung_spec, save

RUNGS = (1, 2)
BOX_W, BOX_H = 2.4, 1.1
COL_GAP, ROW_GAP = 1.3, 0.5


def step_prefix(layer_name: str) -> str:
    """The step part of a layer name: ``"cell_activity-3f2a…-C"`` → ``"cell_activity"``."""
    return layer_name.split("-", 1)[0]


def layer_dependencies(rec: Recording) -> dict[str, set[str]]:
    """Each layer of the observed movie's HighLevelGraph and the layers it depends on."""
    graph = rec.observed.data.__dask_graph__()
    return {name: set(deps) for name, deps in graph.dependencies.items()}


def layer_order(deps: dict[str, set[str]]) -> list[str]:
    """Layers in dependency order (every layer after the layers it reads), ties by name."""
    column = layer_columns(deps)
    return sorted(deps, key=lambda name: (column[name], name))


def layer_columns(deps: dict[str, set[str]]) -> dict[str, int]:
    """Column of each layer: the length of its longest chain of dependencies."""
    column: dict[str, int] = {}

    def visit(name: str) -> int:
        if name not in column:
            column[name] = 1 + max((visit(d) for d in deps.get(name, ()) if d in deps), default=-1)
        return column[name]

    for name in deps:
        visit(name)
    return column


def _layer_caption(rec: Recording, name: str) -> str:
    parts = name.split("-")
    output = "-".join(parts[2:]) if len(parts) > 2 else ""
    n_tasks = len(rec.observed.data.__dask_graph__().layers[name])
    tasks = f"{n_tasks} task{'s' if n_tasks != 1 else ''}"
    return f"…-{output} · {tasks}" if output else tasks


def draw(rec: Recording, title: str) -> plt.Figure:
    """A left-to-right box diagram of the layers of ``rec.observed``."""
    deps = layer_dependencies(rec)
    column = layer_columns(deps)
    by_column: dict[int, list[str]] = {}
    for name in layer_order(deps):
        by_column.setdefault(column[name], []).append(name)
    n_cols = max(by_column, default=-1) + 1
    n_rows = max((len(v) for v in by_column.values()), default=1)

    position = {}
    for col, names in by_column.items():
        for row, name in enumerate(names):
            y = (row - (len(names) - 1) / 2) * (BOX_H + ROW_GAP)
            position[name] = (col * (BOX_W + COL_GAP), y)

    width = max(n_cols, 1) * (BOX_W + COL_GAP) + 1.2
    half_height = n_rows * (BOX_H + ROW_GAP) / 2
    y_low, y_high = -half_height - 0.8, half_height + 0.1
    x_low, x_high = -0.3, width + 0.6
    scale = 0.8  # inches per data unit
    fig, ax = plt.subplots(
        figsize=(scale * (x_high - x_low), scale * (y_high - y_low) + 0.5), layout="constrained"
    )
    final = rec.observed.data.name
    for name, (x, y) in position.items():
        is_final = name == final
        ax.add_patch(
            FancyBboxPatch(
                (x, y - BOX_H / 2),
                BOX_W,
                BOX_H,
                boxstyle="round,pad=0.02,rounding_size=0.15",
                facecolor="#fde9c8" if is_final else "#dbe8f6",
                edgecolor="0.25",
                linewidth=1.2,
            )
        )
        ax.text(
            x + BOX_W / 2,
            y + 0.16,
            step_prefix(name),
            ha="center",
            va="center",
            fontsize=12,
            fontweight="bold",
        )
        ax.text(
            x + BOX_W / 2,
            y - 0.24,
            _layer_caption(rec, name),
            ha="center",
            va="center",
            fontsize=9,
            color="0.3",
        )
    for name, sources in deps.items():
        for source in sources:
            if source not in position:
                continue
            (x0, y0), (x1, y1) = position[source], position[name]
            ax.add_patch(
                FancyArrowPatch(
                    (x0 + BOX_W, y0),
                    (x1, y1),
                    arrowstyle="-|>",
                    mutation_scale=16,
                    color="0.2",
                    linewidth=1.3,
                    shrinkA=2,
                    shrinkB=2,
                )
            )
    if final in position:
        x, y = position[final]
        ax.annotate(
            "rec.observed",
            (x + BOX_W, y),
            xytext=(x + BOX_W + 0.5, y),
            va="center",
            fontsize=10,
            color="0.3",
            style="italic",
            arrowprops={"arrowstyle": "<-", "color": "0.4"},
        )

    built = {step_prefix(n) for n in deps}
    kinds = [s.kind for s in rec.spec.steps]
    eager = [k for k in kinds if k not in built]
    lines = ["spec steps (canonical order): " + " → ".join(kinds)]
    if eager:
        lines.append("no layer (eager at build time, frame-independent): " + ", ".join(eager))
    ax.text(
        -0.2, -half_height - 0.2, "\n".join(lines), ha="left", va="top", fontsize=9, color="0.3"
    )

    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=12)
    return fig


def main(out_dir: Path, small: bool = False) -> list[Path]:
    titles = {
        1: "Rung 1 (cells on black): layers of rec.observed's dask graph",
        2: "Rung 2 (+ optics): layers of rec.observed's dask graph",
    }
    paths = []
    for rung in RUNGS:
        rec = simulate(rung_spec(rung, small))
        paths.append(save(draw(rec, titles[rung]), out_dir, f"task_graph_rung{rung}.png", small))
    return paths
