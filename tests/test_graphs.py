"""The documentation figures: every script renders, and the task graphs follow the spec."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from graphs import task_graphs
from graphs.__main__ import main as graphs_main
from graphs._common import rung_spec
from minisim import simulate

EXPECTED = (
    "rung1_cells_on_black.png",
    "rung2_optics.png",
    "task_graph_rung1.png",
    "task_graph_rung2.png",
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("graphs")
    return out, graphs_main(["--small", "--out", str(out)])


@pytest.mark.parametrize("name", EXPECTED)
def test_every_figure_is_written_and_not_trivial(rendered, name):
    out, written = rendered
    path = out / name
    assert path in written
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.std(pixels[..., :3])) > 0.01  # not a blank canvas


def test_only_pngs_in_the_output_folder(rendered):
    out, written = rendered
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)


@pytest.mark.parametrize("rung", task_graphs.RUNGS)
def test_task_graph_layers_follow_the_canonical_step_order(rung):
    spec = rung_spec(rung, small=True)
    kinds = [step.kind for step in spec.steps]
    deps = task_graphs.layer_dependencies(simulate(spec))
    assert deps, "the observed movie has no graph layers"

    prefixes = {name: task_graphs.step_prefix(name) for name in deps}
    assert set(prefixes.values()) <= set(kinds), f"layers not named after a step: {prefixes}"
    # Listed by the spec's step order, every layer comes after the layers it reads.
    column = task_graphs.layer_columns(deps)
    order = sorted(deps, key=lambda name: (kinds.index(prefixes[name]), column[name], name))
    for position, name in enumerate(order):
        for source in deps[name]:
            assert order.index(source) < position, (
                f"{name} reads {source}: layers out of the spec's order {kinds}"
            )
