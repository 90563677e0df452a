"""The dask task graph of every ladder rung, drawn at the layer level.

``rec.observed.data`` is a dask array whose HighLevelGraph has one layer per lazy
operation the steps wired in; a layer's name starts with the kind of the step that
built it (``cell_activity-…``, ``composite-…``). Each layer is one box, placed left to
right by its longest chain of dependencies, with an arrow from every layer it reads.
Some steps also combine lazy arrays with plain dask operations (``sum``, ``exp``,
``where``, …) whose layers dask names after the operation; each connected run of such
layers becomes one box, credited to the step whose layers read it. Steps that do their
(frame-independent) work eagerly while the graph is built add no layer; they are listed
under the diagram.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from minisim import Recording, SpecWarning, simulate

from ._common import rung_spec, save

RUNGS = (1, 2, 3, 4, 5)
BOX_W, BOX_H = 2.4, 1.1
COL_GAP, ROW_GAP = 1.3, 0.5
#: Captions longer than this go on two lines.
CAPTION_CHARS = 22


def step_prefix(layer_name: str) -> str:
    """The step part of a layer name: ``"cell_activity-3f2a…-C"`` → ``"cell_activity"``."""
    return layer_name.split("-", 1)[0]


def step_kinds(rec: Recording) -> list[str]:
    """The kinds of the recording's steps, in the spec's order.

    ``rec.spec`` re-validates the stored spec; its warnings were already given when the
    spec was built, so they are not repeated here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        return [step.kind for step in rec.spec.steps]


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


def _op_name(layer_name: str) -> str:
    """A layer name without its hex tokens: ``"sum-aggregate-3bc5…"`` → ``"sum-aggregate"``."""
    words = [w for w in layer_name.split("-") if not (len(w) >= 16 and _is_hex(w))]
    return "-".join(words) or layer_name


def _is_hex(word: str) -> bool:
    try:
        int(word, 16)
    except ValueError:
        return False
    return True


def _n_tasks(rec: Recording, names) -> int:
    layers = rec.observed.data.__dask_graph__().layers
    return sum(len(layers[name]) for name in names)


def _tasks(n_tasks: int) -> str:
    return f"{n_tasks} task{'s' if n_tasks != 1 else ''}"


def node_graph(rec: Recording) -> tuple[dict[str, set[str]], dict[str, str]]:
    """The graph that is drawn: its nodes with the nodes each reads, and their captions.

    Layers named after a step of the spec are nodes as they are. The other layers (plain
    dask operations) are grouped: layers connected to each other, or read by the same
    step layers, form one node named ``<step>-array-ops-<k>``, where ``<step>`` is the
    earliest step (in the spec's order) whose layers read the group. Should grouping ever
    create a cycle, every such layer becomes a node of its own.
    """
    deps = layer_dependencies(rec)
    kinds = step_kinds(rec)
    anonymous = sorted(name for name in deps if step_prefix(name) not in kinds)
    if not anonymous:
        return deps, {name: _layer_caption(rec, name) for name in deps}

    readers: dict[str, set[str]] = {name: set() for name in deps}
    for name, sources in deps.items():
        for source in sources:
            if source in readers:
                readers[source].add(name)
    group = {name: name for name in anonymous}  # union-find over the anonymous layers

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    def join(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            group[max(ra, rb)] = min(ra, rb)

    for name in anonymous:
        for source in deps[name]:
            if source in group:
                join(name, source)
    by_readers: dict[frozenset, str] = {}
    for name in anonymous:
        named_readers = frozenset(r for r in readers[name] if r not in group)
        if named_readers:
            join(name, by_readers.setdefault(named_readers, name))

    members: dict[str, list[str]] = {}
    for name in anonymous:
        members.setdefault(root(name), []).append(name)

    def owner(names: list[str]) -> str:
        steps = {step_prefix(r) for n in names for r in readers[n] if r not in group}
        if not steps:  # nothing named reads it: credit the step layers it reads
            steps = {step_prefix(d) for n in names for d in deps[n] if d not in group}
        steps &= set(kinds)
        return min(steps, key=kinds.index) if steps else "dask"

    node_of = {name: name for name in deps}
    captions = {name: _layer_caption(rec, name) for name in deps if name not in group}
    counters: dict[str, int] = {}
    for names in sorted(members.values(), key=lambda names: names[0]):
        step = owner(names)
        counters[step] = counters.get(step, 0) + 1
        node = f"{step}-array-ops-{counters[step]}"
        for name in names:
            node_of[name] = node
        ops = sorted({_op_name(n) for n in names})
        what = ", ".join(ops) if len(ops) <= 2 else f"{len(names)} array-op layers"
        captions[node] = f"{what} · {_tasks(_n_tasks(rec, names))}"

    nodes: dict[str, set[str]] = {}
    for name, sources in deps.items():
        node = node_of[name]
        nodes.setdefault(node, set()).update(node_of[s] for s in sources if s in node_of)
    for node, sources in nodes.items():
        sources.discard(node)
    if _has_cycle(nodes):
        return _singletons(rec, deps, kinds, readers)
    return nodes, captions


def _has_cycle(deps: dict[str, set[str]]) -> bool:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str) -> bool:
        if state.get(name) == 1:
            return True
        if state.get(name) == 2:
            return False
        state[name] = 1
        found = any(visit(d) for d in deps.get(name, ()) if d in deps)
        state[name] = 2
        return found

    return any(visit(name) for name in deps)


def _singletons(rec, deps, kinds, readers):
    """Every plain-dask layer its own node, credited to the earliest step reading it."""
    node_of, captions = {}, {}
    for name in deps:
        if step_prefix(name) in kinds:
            node_of[name] = name
            captions[name] = _layer_caption(rec, name)
            continue
        steps = {step_prefix(r) for r in readers[name] if step_prefix(r) in kinds}
        step = min(steps, key=kinds.index) if steps else "dask"
        node_of[name] = f"{step}-{_op_name(name)}-{len(node_of)}"
        captions[node_of[name]] = f"{_op_name(name)} · {_tasks(_n_tasks(rec, [name]))}"
    nodes = {node_of[n]: {node_of[s] for s in src if s in node_of} for n, src in deps.items()}
    return nodes, captions


def _layer_caption(rec: Recording, name: str) -> str:
    output = _op_name(name)[len(step_prefix(name)) + 1 :]  # e.g. "C", "envelopes-drift"
    tasks = _tasks(_n_tasks(rec, [name]))
    return f"…-{output} · {tasks}" if output else tasks


def _column_slots(deps: dict[str, set[str]]) -> dict[int, list]:
    """Per column, its layers and one lane per edge passing through it, unordered."""
    column = layer_columns(deps)
    slots: dict[int, list] = {}
    for name in deps:
        slots.setdefault(column[name], []).append(name)
        for source in deps[name]:
            for col in range(column[source] + 1, column[name]):
                slots.setdefault(col, []).append((source, name, col))
    return slots


def layout(deps: dict[str, set[str]]):
    """Box positions, and the lanes that edges spanning several columns run along.

    Columns are the longest chains of dependencies. An edge that skips columns gets a
    lane (an empty box-sized slot) in every column it crosses, so it never runs through
    a box. Within a column, boxes and lanes are ordered by the mean height of what they
    read in the previous column (then by name), which keeps edges short and uncrossed.
    """
    column = layer_columns(deps)
    slots = _column_slots(deps)
    height: dict = {}

    def previous(item) -> list:
        if isinstance(item, tuple):  # a lane of edge source → target in column col
            source, target, col = item
            return [source if column[source] == col - 1 else (source, target, col - 1)]
        col = column[item]
        return [s if column[s] == col - 1 else (s, item, col - 1) for s in deps[item] if s in deps]

    def key(item):
        heights = [height[p] for p in previous(item) if p in height]
        mean = sum(heights) / len(heights) if heights else 0.0
        return (mean, isinstance(item, tuple), str(item))

    position, lanes = {}, {}
    for col in sorted(slots):
        items = sorted(slots[col], key=key if col else (lambda i: (0.0, False, str(i))))
        for row, item in enumerate(items):
            y = (row - (len(items) - 1) / 2) * (BOX_H + ROW_GAP)
            height[item] = y
            x = col * (BOX_W + COL_GAP)
            if isinstance(item, tuple):
                lanes.setdefault(item[:2], []).append((x, y))
            else:
                position[item] = (x, y)
    for points in lanes.values():
        points.sort()
    return position, lanes


def draw(rec: Recording, title: str) -> plt.Figure:
    """A left-to-right box diagram of the layers of ``rec.observed``."""
    deps, captions = node_graph(rec)
    position, lanes = layout(deps)
    n_cols = max((round(x / (BOX_W + COL_GAP)) for x, _ in position.values()), default=-1) + 1
    n_rows = max((len(v) for v in _column_slots(deps).values()), default=1)

    width = max(n_cols, 1) * (BOX_W + COL_GAP) + 1.2
    half_height = n_rows * (BOX_H + ROW_GAP) / 2
    y_low, y_high = -half_height - 0.8, half_height + 0.1
    x_low, x_high = -0.3, width + 0.6
    scale = 0.8  # inches per data unit
    fig, ax = plt.subplots(
        figsize=(scale * (x_high - x_low), scale * (y_high - y_low) + 0.5), layout="constrained"
    )
    final = rec.observed.data.name
    if final not in deps:  # the last layer is a plain dask operation: take its group
        read = set().union(*deps.values())
        sinks = [name for name in deps if name not in read]
        final = sinks[0] if len(sinks) == 1 else final
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
            fontsize=12 if len(step_prefix(name)) <= 16 else 10.5,
            fontweight="bold",
        )
        caption = captions[name]
        long = len(caption) > CAPTION_CHARS
        ax.text(
            x + BOX_W / 2,
            y - 0.24,
            caption.replace(" · ", "\n") if long else caption,
            ha="center",
            va="center",
            fontsize=8.5 if long else 9,
            color="0.3",
        )
    for name, sources in deps.items():
        for source in sources:
            if source not in position:
                continue
            (x0, y0), (x1, y1) = position[source], position[name]
            points = [(x0 + BOX_W, y0)]
            for x, y in lanes.get((source, name), []):  # an edge spanning columns
                points += [(x, y), (x + BOX_W, y)]
            if len(points) > 1:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, color="0.2", linewidth=1.3, solid_capstyle="round")
            ax.add_patch(
                FancyArrowPatch(
                    points[-1],
                    (x1, y1),
                    arrowstyle="-|>",
                    mutation_scale=16,
                    color="0.2",
                    linewidth=1.3,
                    shrinkA=2 if len(points) == 1 else 0,
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
    kinds = step_kinds(rec)
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
        3: "Rung 3 (+ brain motion): layers of rec.observed's dask graph",
        4: "Rung 4 (rung 2 + neuropil): layers of rec.observed's dask graph",
        5: "Rung 5 (+ illumination, vignette, leakage): layers of rec.observed's dask graph",
    }
    paths = []
    for rung in RUNGS:
        rec = simulate(rung_spec(rung, small))
        paths.append(save(draw(rec, titles[rung]), out_dir, f"task_graph_rung{rung}.png", small))
    return paths
