"""The engine alone: keyed streams, chunk policy, scans, range maps, sparse footprints."""

from __future__ import annotations

import subprocess
import sys

import dask
import numpy as np
import pytest

from minisim.engine import (
    Footprints,
    ScanOutput,
    auto_frame_chunks,
    constant,
    map_ranges,
    normalize_chunks,
    scan,
    split_evenly,
    stable_id,
    stream,
)
from minisim.engine.chunks import FRAME_COPIES


def test_streams_are_keyed_not_ordered():
    a = stream(1, "sensor", "noise", 5).random(4)
    stream(1, "sensor", "noise", 4).random(100)  # drawing elsewhere changes nothing
    assert np.array_equal(a, stream(1, "sensor", "noise", 5).random(4))
    others = [
        stream(2, "sensor", "noise", 5),
        stream(1, "neuropil", "noise", 5),
        stream(1, "sensor", "drift", 5),
        stream(1, "sensor", "noise", 6),
    ]
    for rng in others:
        assert not np.array_equal(a, rng.random(4))


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 1000, 4099])
def test_compiled_words_are_numpys_pcg64_words(n):
    pytest.importorskip("numba")
    from minisim.engine._words_numba import pcg64_words
    from minisim.engine.rng import raw_words

    for key in range(4):
        ours, numpys = stream(key, "test", "words"), stream(key, "test", "words")
        for _ in range(3):  # consecutive calls continue the stream
            got = raw_words(ours)(n)
            assert got.dtype == np.uint64
            np.testing.assert_array_equal(got, numpys.bit_generator.random_raw(n))
        assert ours.bit_generator.state == numpys.bit_generator.state
        assert ours.random() == numpys.random()  # and the generator stays usable
    # A half-used 32-bit word buffered by an earlier draw survives, as with random_raw.
    ours, numpys = stream(9, "test", "words"), stream(9, "test", "words")
    for g in (ours, numpys):
        g.integers(0, 10, dtype=np.uint32)
    np.testing.assert_array_equal(raw_words(ours)(n), numpys.bit_generator.random_raw(n))
    assert ours.bit_generator.state == numpys.bit_generator.state
    assert ours.integers(0, 2**32, dtype=np.uint32) == numpys.integers(0, 2**32, dtype=np.uint32)
    other = np.random.Generator(np.random.Philox(1))  # not PCG64: numpy's own words
    assert raw_words(other).__self__ is other.bit_generator
    with pytest.raises(TypeError):
        pcg64_words(np.random.Philox(1), 4)


def test_stable_id_is_process_independent():
    code = "from minisim.engine import stable_id; print(stable_id('cell_activity'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == stable_id("cell_activity")


def test_chunk_policy():
    assert split_evenly(10, 4) == (4, 4, 2)
    assert split_evenly(8, 4) == (4, 4)
    assert split_evenly(3, 10) == (3,)
    frame_bytes = 200 * 200 * 4
    work = FRAME_COPIES * frame_bytes  # what one frame counts against the chunk size
    # Size-bound: 64 MiB holds 209 frames → 48 chunks needed, already whole rounds of 2.
    with dask.config.set({"array.chunk-size": "64MiB"}, num_workers=2):
        auto = normalize_chunks(None, 10_000, frame_bytes)
    assert auto == (209,) * 47 + (177,)
    # dask's setting is honoured: a quarter of the size, about four times the chunks.
    small = auto_frame_chunks(10_000, frame_bytes, target_bytes=16 * 2**20, threads=2)
    assert len(small) == 193 and max(small) == 16 * 2**20 // work
    # Small recording: two chunks per thread, balanced (the old policy gave 311 + 89).
    assert auto_frame_chunks(400, frame_bytes, target_bytes=311 * work, threads=2) == (100,) * 4
    # A chunk count that is a multiple of the threads (10 needed by size → 12 with 3 threads).
    assert auto_frame_chunks(500, 2**20, target_bytes=100 * 2**20, threads=3) == (
        (42,) * 11 + (38,)
    )
    # Too few frames for two chunks per thread: no chunk below the minimum length.
    assert auto_frame_chunks(100, frame_bytes, threads=4) == (34, 34, 32)
    assert auto_frame_chunks(40, frame_bytes, threads=8) == (40,)
    with dask.config.set(num_workers=3):
        assert len(normalize_chunks(None, 600, frame_bytes)) == 6
    # Regular (what Zarr needs) and complete, whatever the sizes.
    for frames in (1, 31, 64, 65, 400, 401, 999, 10_007):
        for threads in (1, 2, 3, 7, 16):
            got = auto_frame_chunks(frames, frame_bytes, target_bytes=8 * 2**20, threads=threads)
            assert sum(got) == frames and len(set(got[:-1])) <= 1 and got[-1] <= got[0]
            assert max(got) <= max(8 * 2**20 // work, 1)
    # The user's chunks always win.
    assert normalize_chunks({"frame": 7}, 20, frame_bytes) == (7, 7, 6)
    assert normalize_chunks(-1, 20, frame_bytes) == (20,)
    assert normalize_chunks(5, 20, frame_bytes) == (5, 5, 5, 5)
    assert normalize_chunks({"frame": (3, 10, 7)}, 20, frame_bytes) == (3, 10, 7)
    for bad in (0, -2, 2.5, {"y": 3}, "big", (3, 3), (0, 20)):
        with pytest.raises(ValueError, match="chunks"):
            normalize_chunks(bad, 20, frame_bytes)


def _cumsum_step(state, block, start, stop, increments, offset):
    out = state[:, None] + np.cumsum(increments, axis=1) + offset
    return out[:, -1], out, np.arange(start, stop)[None, :].repeat(len(state), 0)


def test_scan_carries_state_across_blocks():
    import dask.array as da

    rng = np.random.default_rng(0)
    inc = rng.random((3, 2500))
    start = np.array([1.0, 2.0, 3.0])
    total, frames = scan(
        "test-scan",
        _cumsum_step,
        init=(np.copy, constant(start)),
        n_frames=2500,
        outputs=[ScanOutput("total", (3, None), float), ScanOutput("frame", (3, None), int)],
        sequences=[(da.from_array(inc, chunks=(3, 333)), 1)],
        constants=[0.0],
        block=1000,
    )
    assert total.chunks[1] == (1000, 1000, 500)
    np.testing.assert_allclose(total.compute(), start[:, None] + np.cumsum(inc, axis=1), rtol=1e-12)
    assert np.array_equal(frames.compute()[0], np.arange(2500))


def _ranges(start, stop, column, scale):
    return (np.arange(start, stop)[:, None] * scale + column[None, :]).astype(np.float32)


def test_map_ranges_passes_absolute_ranges():
    col = np.arange(4.0)
    arr = map_ranges(
        "test-ranges", _ranges, (3, 3, 1), (4,), np.float32, constants=[constant(col), 10.0]
    )
    expected = (np.arange(7)[:, None] * 10.0 + col).astype(np.float32)
    assert np.array_equal(arr.compute(), expected)


def test_footprints_pack_trim_and_densify():
    a = np.zeros((4, 5), np.float32)
    a[1:3, 2:4] = [[1, 0.5], [0.25, 1]]
    b = np.ones((2, 2), np.float32)
    fp = Footprints.from_patches([((10, 20), a), ((0, 0), b), ((5, 5), np.zeros((3, 3)))], (30, 30))
    assert len(fp) == 3
    (off, patch) = fp.patch(0)
    assert off == (11, 22) and np.array_equal(patch, a[1:3, 2:4])
    assert tuple(fp.shapes[2]) == (0, 0)
    dense = fp.to_dense(0, 3, (0, 0, 30, 30))
    assert dense[0, 11:13, 22:24].tolist() == [[1, 0.5], [0.25, 1]] and dense[0].sum() == 2.75
    window = fp.to_dense(0, 2, (1, 1, 12, 22))  # crop: cell 1 partly outside
    assert window[1].sum() == 1.0 and window[0].sum() == 1.25  # only column 22 is inside
    assert fp.visible_in(0, 0, 2, 2).tolist() == [False, True, False]
    sub = fp.subset(np.array([True, False, True]))
    assert len(sub) == 2 and sub.patch(0)[0] == (11, 22)


def _sum_rows(start, stop, block):
    return block.sum(axis=0, keepdims=False)[:, None].repeat(1, axis=1)[:, 0]


def test_inputs_are_recut_to_the_consumer_chunks_inside_its_layer():
    import dask.array as da

    values = np.arange(30.0).reshape(3, 10)
    source = da.from_array(values, chunks=(3, (4, 4, 2)))
    out = map_ranges("test-recut", _sum_rows, (3, 5, 2), (), float, inputs=[(source, 1)])
    assert np.array_equal(out.compute(), values.sum(axis=0))
    layers = set(out.__dask_graph__().layers)
    assert all(name.startswith(("test-recut", "array-")) for name in layers), layers


def test_recut_reads_source_blocks_directly():
    import dask.array as da

    from minisim.engine import recut

    values = np.arange(60.0).reshape(3, 20)
    source = da.from_array(values, chunks=(3, (7, 7, 6)))
    out = recut(source, 1, (5, 5, 10), "test-recut-truth")
    assert out.chunks == ((3,), (5, 5, 10))
    assert np.array_equal(out.compute(), values)
    graph = dict(out.__dask_graph__())
    # one task per new block, each reading only the source blocks it overlaps
    own = {k: v for k, v in graph.items() if k[0] == "test-recut-truth"}
    assert len(own) == 3
    assert recut(source, 1, (7, 7, 6), "unused") is source


@pytest.mark.parametrize("canvas", [(37, 45), (64, 64), (9, 130)])
def test_refining_node_grids_step_by_step_is_interpolating_at_once(canvas):
    """Bilinear from spacing 8 onto 4, 2 and the pixels equals bilinear straight onto the
    pixels (a refined grid's nodes lie on the coarse surface), up to float64 rounding,
    including the clamped last nodes of sides that are not multiples of the spacing."""
    from minisim.engine.multiscale import node_count, refinement_matrix

    rng = np.random.default_rng(3)
    nodes = rng.random(node_count(canvas[0], 8) * node_count(canvas[1], 8))
    at_once = refinement_matrix(8, 1, canvas, np.float64) @ nodes
    stepwise = nodes
    for coarse, fine in ((8, 4), (4, 2), (2, 1)):
        stepwise = refinement_matrix(coarse, fine, canvas, np.float64) @ stepwise
    np.testing.assert_allclose(stepwise, at_once, rtol=0, atol=1e-14)
    # Bilinear weights: each pixel's weights sum to one, and pixels on a node copy it.
    assert np.allclose(refinement_matrix(8, 1, canvas, np.float64).sum(axis=1), 1.0)
    on_nodes = at_once.reshape(canvas)[::8, ::8]
    grid = nodes.reshape(node_count(canvas[0], 8), node_count(canvas[1], 8))
    assert np.array_equal(on_nodes, grid[: on_nodes.shape[0], : on_nodes.shape[1]])
    with pytest.raises(ValueError, match="powers of two"):
        refinement_matrix(6, 4, canvas, np.float64)


def test_dense_footprints_are_exactly_what_render_draws_for_each_cell():
    from minisim.engine.multiscale import MultiScaleFootprints, node_count

    canvas = (45, 61)
    rng = np.random.default_rng(7)
    patches = []
    for i in range(40):  # cells at every level, some at the canvas edge
        factor = [1, 2, 4, 8][i % 4]
        grid = (node_count(canvas[0], factor), node_count(canvas[1], factor))
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        corner = (int(rng.integers(0, grid[0] - shape[0] + 1)),
                  int(rng.integers(0, grid[1] - shape[1] + 1)))  # fmt: skip
        patches.append((factor, corner, rng.random(shape).astype(np.float32)))
    ms = MultiScaleFootprints.from_levels(patches, canvas)
    window = (3, 4, 40, 50)
    dense = ms.to_dense(5, 38, window)
    for cell in range(5, 38):
        alone = np.zeros((ms.n_cells, 1), np.float32)
        alone[cell] = 1.0
        drawn = ms.render(alone, np.float32)[0, 3:43, 4:54]
        np.testing.assert_array_equal(dense[cell - 5], drawn)


def test_footprints_travel_without_their_operators():
    """A worker receiving footprints builds its own operators: pickling the cache would
    ship several times the footprints' size between workers."""
    import pickle

    from minisim.engine.multiscale import MultiScaleFootprints

    patches = [(f, (0, 0), np.ones((3, 3), np.float32)) for f in (1, 2, 4)]
    ms = MultiScaleFootprints.from_levels(patches, (40, 40))
    fresh = len(pickle.dumps(ms))
    ms.render(np.ones((3, 2), np.float32), np.float32)
    ms.to_dense(0, 3, (0, 0, 40, 40))
    assert "_operator_cache" in ms.__dict__ and "_column_cache" in ms.__dict__
    assert len(pickle.dumps(ms)) == fresh
    back = pickle.loads(pickle.dumps(ms))
    weights = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(back.render(weights, np.float32), ms.render(weights, np.float32))


def test_graph_constants_are_tasks_not_plain_data():
    # Plain data in a graph is a "data producer": distributed queues it as a root task
    # until a worker is idle, so pixel chunks that need it would pile up meanwhile.
    from dask._task_spec import convert_legacy_graph

    field = np.ones((4, 4))
    arr = map_ranges(
        "test-constant", _ranges, (3, 3), (4,), np.float32, constants=[constant(field), 1.0]
    )
    graph = convert_legacy_graph(dict(arr.__dask_graph__()))
    assert not [key for key, task in graph.items() if task.data_producer]


def _noise_step(state, block, start, stop):
    values = stream(7, "test", "noise", block).random((2, stop - start))
    return state, values, np.stack([values.min(axis=1), values.max(axis=1)], axis=1)


def test_scan_block_summaries_and_recomputed_sequences():
    values, extremes = scan(
        "test-summaries",
        _noise_step,
        init=0,
        n_frames=700,
        outputs=[
            ScanOutput("values", (2, None), float),
            ScanOutput("extremes", (2, 2), float, per_block=True),
        ],
        block=300,
    )
    assert extremes.shape == (3, 2, 2) and extremes.chunks[0] == (1, 1, 1)
    whole = values.compute()
    blocks = np.split(whole, [300, 600], axis=1)
    expected = np.stack([np.stack([b.min(axis=1), b.max(axis=1)], axis=1) for b in blocks])
    assert np.array_equal(extremes.compute(), expected)
    # A scan reading ``values`` (a scan output: a recomputed layer) recomputes its blocks
    # inside its own tasks: the numbers of the whole array, and no task of its layer
    # depends on a shared ``values`` block.
    (total,) = scan(
        "test-reader",
        _cumsum_step,
        init=(np.zeros, 2),
        n_frames=700,
        outputs=[ScanOutput("total", (2, None), float)],
        sequences=[(values, 1)],
        constants=[0.0],
        block=300,
    )
    assert np.allclose(total.compute(), np.cumsum(whole, axis=1), rtol=1e-12)
    from dask.core import get_dependencies

    graph = dict(total.__dask_graph__())
    readers = [k for k in graph if str(k[0]).startswith("test-reader")]
    assert readers
    assert not any(dep[0] == values.name for k in readers for dep in get_dependencies(graph, k))


_BLOCK_RUNS: list = []


def _counted_step(state, k, start, stop, offset):
    """A scan step recording which blocks it ran (by offset, to tell two scans apart)."""
    _BLOCK_RUNS.append((offset, k))
    values = np.arange(start, stop, dtype=float)[None, :] + offset
    return state + values.sum(), values


def _reads_in_place(start, stop, values):
    values += 1.0  # a kernel that (wrongly) writes into its input
    return values


def test_scan_blocks_are_computed_once_per_process_for_all_their_readers():
    from minisim.engine import map_ranges
    from minisim.engine.scan import _BLOCK_OUTPUTS

    def build(offset):
        (values,) = scan(
            "test-shared-blocks",  # the same name both times: the blocks still differ
            _counted_step,
            init=0.0,
            n_frames=600,
            outputs=[ScanOutput("values", (1, None), float)],
            constants=[offset],
            block=200,
        )
        # Ten readers (chunks of 60 frames) of three blocks: each block feeds 3–4 readers.
        return map_ranges(
            "test-readers-" + str(offset), _identity_frames, [60] * 10, (), float,
            inputs=[(values, 1)],
        )  # fmt: skip

    _BLOCK_OUTPUTS.clear()
    _BLOCK_RUNS.clear()
    for scheduler in ("sync", "threads"):
        for offset in (0.0, 1000.0):  # separate computes: within one graph names must differ
            got = build(offset).compute(scheduler=scheduler)
            np.testing.assert_array_equal(got, np.arange(600.0) + offset)
    # Per scan and compute, the state chain runs blocks 0 and 1 (block 2's end state is
    # never read) and offers their outputs; the readers computed only block 2, once.
    for offset in (0.0, 1000.0):
        runs = [k for o, k in _BLOCK_RUNS if o == offset]
        assert sorted(runs) == [0, 0, 1, 1, 2], (offset, runs)
    # Kept arrays are read-only: a kernel writing into its input fails instead of
    # corrupting what other readers get.
    (values,) = scan(
        "test-read-only", _counted_step, init=0.0, n_frames=10,
        outputs=[ScanOutput("values", (1, None), float)], constants=[7.0], block=10,
    )  # fmt: skip
    bad = map_ranges("test-bad-reader", _reads_in_place, [10], (), float, inputs=[(values, 1)])
    with pytest.raises(ValueError, match="read-only"):
        bad.compute(scheduler="sync")
    _BLOCK_OUTPUTS.clear()


def test_kept_scan_blocks_stay_within_their_size_limit():
    from minisim.engine.scan import _BlockOutputs

    kept = _BlockOutputs(max_bytes=3 * 200 * 8)  # three blocks of 200 float64
    _BLOCK_RUNS.clear()
    for k in [0, 1, 2, 3, 0, 3, 2]:  # 0 was pushed out by 3, then 1 by 0 (least recent)
        kept.get(f"blocks-{k}", _counted_step, 0.0, k, 200 * k, 200 * (k + 1), 5.0)
    assert [k for _, k in _BLOCK_RUNS] == [0, 1, 2, 3, 0]
    assert kept._bytes == 3 * 200 * 8
    kept.get("huge", _counted_step, 0.0, 9, 0, 1000, 5.0)  # larger than the limit: not kept
    assert "huge" not in kept._kept and kept._bytes == 3 * 200 * 8
    # What the state chain offers is kept only while there is room: it never evicts.
    kept.offer("offered", (np.zeros(200),))
    assert "offered" not in kept._kept and list(kept._kept) == ["blocks-0", "blocks-3", "blocks-2"]
    kept.clear()
    kept.offer("offered", (np.zeros(200),))
    assert "offered" in kept._kept and not kept._kept["offered"][0][0].flags.writeable


def _identity_frames(start, stop, values):
    return values[0].copy()


def _scene(fuse_pixels: bool = True):
    from minisim.engine import Scene

    return Scene(
        spec=None, seed=0, n_frames=40, frame_chunks=(10, 10, 10, 10), fov_shape=(3, 4),
        canvas_shape=(3, 4), token="test", fuse_pixels=fuse_pixels,
    )  # fmt: skip


def _frame_index(start, stop):
    return np.arange(start, stop, dtype=np.float64)


def _add_frames(start, stop, frames, values):
    return frames + values[:, None, None]


def _scale_to_mean_one(start, stop, values):
    return values / values.mean()


def _deps_on(array, layer_name) -> bool:
    from dask.core import get_dependencies

    graph = dict(array.__dask_graph__())
    own = [k for k in graph if k[0] == array.name]
    return any(dep[0] == layer_name for k in own for dep in get_dependencies(graph, k))


@pytest.mark.parametrize("fuse_pixels", [True, False])
def test_the_engine_decides_what_is_shared_and_what_is_recomputed(fuse_pixels):
    """Per-frame values are recomputed by their readers, a whole-recording statistic is
    computed once and shared, and the pixel chain is one task per chunk when fused."""
    scene = _scene(fuse_pixels)
    index = scene.frame_map(("test", "index"), _frame_index, (), np.float64)
    scale = scene.statistic(("test", "scale"), _scale_to_mean_one, (), np.float64,
                            inputs=[(index, 0)])  # fmt: skip
    assert "-statistic-" in scale.name and scale.chunks == ((40,),)
    black = scene.canvas_movie(np.float64)
    first = scene.pixel_map(("test", "first"), _add_frames, (3, 4), np.float64,
                            inputs=[(black, 0), (index, 0)])  # fmt: skip
    second = scene.pixel_map(("test", "second"), _add_frames, (3, 4), np.float64,
                             inputs=[(first, 0), (scale, 0)])  # fmt: skip
    frames = np.arange(40.0)
    expected = (frames + frames / frames.mean())[:, None, None] * np.ones((1, 3, 4))
    assert np.array_equal(second.compute(), expected)
    assert not _deps_on(first, index.name), "a per-frame value is recomputed, not shared"
    assert not _deps_on(scale, index.name)
    assert _deps_on(second, scale.name), "a statistic is shared, not recomputed per chunk"
    assert _deps_on(second, first.name) is not fuse_pixels


def test_a_recipe_constant_ships_its_arguments_not_its_value():
    import cloudpickle

    from minisim.engine import recipe

    field = recipe("test-field", np.full, (200, 200), 0.25, np.float32)
    assert recipe("test-field", np.full, (200, 200), 0.25, np.float32).key == field.key
    arr = map_ranges(
        "test-recipe", _ranges, (3, 3), (4,), np.float32, constants=[constant(np.zeros(4)), 1.0]
    )
    out = map_ranges(
        "test-recipe-use", _add_field_sum, (3, 3), (4,), np.float32,
        inputs=[(arr, 0)], constants=[field],
    )  # fmt: skip
    assert np.array_equal(out.compute(), arr.compute() + np.float32(0.25 * 200 * 200))
    assert len(cloudpickle.dumps(dict(out.__dask_graph__()))) < 200 * 200 * 4 / 10


def _add_field_sum(start, stop, frames, field):
    return frames + field.sum(dtype=np.float32)


@pytest.mark.parametrize("dropped", [False, True])
def test_every_lazy_array_computes_to_its_declared_chunks_dtype_and_meta(dropped):
    # The engine builds some graphs by hand (map_ranges, scan, recut, take_frames): check
    # them the way dask checks its own arrays, block by block, on a full chain.
    import dask
    import dask.array as da

    from minisim import DroppedFrames, Spec, simulate

    from .conftest import full_chain_steps, small_acquisition

    steps = full_chain_steps() + ([DroppedFrames(dropped=[3, 4, 9])] if dropped else [])
    spec = Spec(acquisition=small_acquisition(px=32, duration_s=1.5), seed=2, steps=steps)
    ds = simulate(spec, chunks=7).dataset
    checked = 0
    for name, var in ds.variables.items():
        arr = var.data
        if not isinstance(arr, da.Array):
            continue
        blocks = dask.compute(*arr.to_delayed(optimize_graph=False).ravel(), scheduler="sync")
        for index, block in zip(np.ndindex(*arr.numblocks), blocks, strict=True):
            expected = tuple(arr.chunks[axis][i] for axis, i in enumerate(index))
            assert np.shape(block) == expected, (name, index, np.shape(block), expected)
            assert np.asarray(block).dtype == arr.dtype, (name, np.asarray(block).dtype, arr.dtype)
            assert type(np.asarray(block)) is type(arr._meta), (name, type(arr._meta))
            assert arr._meta.dtype == arr.dtype and arr._meta.ndim == arr.ndim, name
        checked += 1
    assert checked >= 10
