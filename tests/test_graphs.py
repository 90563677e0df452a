"""The documentation figures: every script renders, and the task graphs follow the spec."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from graphs import task_graphs
from graphs.__main__ import main as graphs_main
from graphs._common import rung_spec
from minisim import simulate
from minisim.steps import registered_steps

EXPECTED = (
    "rung1_cells_on_black.png",
    "rung2_optics.png",
    "rung3_motion.png",
    "rung4_neuropil.png",
    "rung5_fields.png",
    "rung6_sensor.png",
    "vessels.png",
    "real_sensor.png",
    "dropped_frames.png",
    "breathing_vessels.png",
    "nonrigid_motion.png",
    "shot_noise.png",
    *(f"task_graph_rung{rung}.png" for rung in (1, 2, 3, 4, 5)),
)


#: Rungs whose observed movie has layers named by dask after a plain array operation.
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


def test_every_rung_has_a_task_graph():
    assert task_graphs.RUNGS == (1, 2, 3, 4, 5)


PIXEL_STEPS = {  # the steps that change the movie
    c.kind_name() for c in registered_steps() if ("movie", "observed") in {
        (q.place, q.name) for q in c.provided_quantities()}
}  # fmt: skip


@pytest.mark.parametrize("rung", task_graphs.RUNGS)
def test_task_graph_layers_follow_the_canonical_step_order(rung):
    spec = rung_spec(rung, small=True)
    kinds = [step.kind for step in spec.steps]
    rec = simulate(spec)
    deps, captions = task_graphs.node_graph(rec)
    assert deps, "the observed movie has no graph layers"
    assert set(captions) == set(deps)
    layers = task_graphs.layer_dependencies(rec)
    assert len(deps) <= len(layers)
    named = {name for name in layers if task_graphs.step_prefix(name) in kinds}
    assert named <= set(deps), "a layer named after a step is missing from the drawing"

    prefixes = {name: task_graphs.step_prefix(name) for name in deps}
    assert set(prefixes.values()) <= set(kinds), f"boxes not credited to a step: {prefixes}"
    # Listed by the spec's step order, every box comes after the boxes it reads.
    column = task_graphs.layer_columns(deps)
    order = sorted(deps, key=lambda name: (kinds.index(prefixes[name]), column[name], name))
    first_pixel_step = min(kinds.index(p) for p in prefixes.values() if p in PIXEL_STEPS)
    for position, name in enumerate(order):
        for source in deps[name]:
            if "-statistic-" in source:
                # A whole-recording statistic is prepared before any pixel work, from
                # cell-domain layers only; pixel layers of earlier steps may wait for it.
                assert all(
                    kinds.index(prefixes[s]) < first_pixel_step or prefixes[s] == prefixes[source]
                    for s in deps[source]
                ), f"statistic {source} reads pixel layers"
                continue
            assert order.index(source) < position, (
                f"{name} reads {source}: layers out of the spec's order {kinds}"
            )


@pytest.mark.parametrize("rung", task_graphs.RUNGS)
def test_every_layer_is_named_after_a_step(rung):
    spec = rung_spec(rung, small=True)
    kinds = {step.kind for step in spec.steps}
    layers = task_graphs.layer_dependencies(simulate(spec))
    unnamed = sorted(name for name in layers if task_graphs.step_prefix(name) not in kinds)
    assert not unnamed, f"layers not named after a step: {unnamed}"


def test_layout_routes_a_long_edge_around_the_boxes_it_skips():
    deps = {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"c", "a"}}
    position, lanes = task_graphs.layout(deps)
    assert [round(position[n][0] / (task_graphs.BOX_W + task_graphs.COL_GAP)) for n in "abcd"] == [
        0,
        1,
        2,
        3,
    ]
    lane = lanes[("a", "d")]
    assert [round(x / (task_graphs.BOX_W + task_graphs.COL_GAP)) for x, _ in lane] == [1, 2]
    for x, y in lane:  # no box in the lane's slot
        assert all(abs(y - by) >= task_graphs.BOX_H for bx, by in position.values() if bx == x)


def test_rung6_is_the_full_ladder_recording():
    spec = rung_spec(6, small=True)
    assert [step.kind for step in spec.steps] == [
        "place_neurons",
        "cell_activity",
        "bleaching",
        "optics",
        "composite",
        "neuropil",
        "brain_motion",
        "illumination_profile",
        "vignette",
        "leakage",
        "sensor",
    ]
