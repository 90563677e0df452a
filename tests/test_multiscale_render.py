"""The composite's renderer: the compiled pass gives the bytes of SciPy's products.

``MultiScaleFootprints.render`` sums the footprints of every level into frame-major
frames. With numba one compiled pass per level does each level's product, the
interpolation of the coarser sum and their addition, writing the pixels frame-major;
without numba SciPy's sparse products, numpy's ``+=`` and a transpose do it. Both must
give the bytes of the original SciPy route (kept below, frozen, as the reference), for
any number of frames, canvas size and set of levels.
"""

from __future__ import annotations

import numpy as np
import pytest

from minisim.engine import multiscale
from minisim.engine.multiscale import MultiScaleFootprints, node_count
from minisim.engine.sparse import Footprints


def reference_render(fp: MultiScaleFootprints, weights: np.ndarray, dtype) -> np.ndarray:
    """The renderer as it was before the compiled pass (SciPy products, then a transpose)."""
    dtype = np.dtype(dtype)
    n_frames = weights.shape[1]
    if n_frames == 1:
        weights = np.concatenate([weights, np.zeros_like(weights)], axis=1)
    carried = None
    operators = fp._operators(dtype)
    for level, (nodes, to_finer) in zip(fp.levels[::-1], operators[::-1], strict=True):
        if len(level.cells):
            here = nodes @ np.ascontiguousarray(weights[level.cells], dtype=dtype)
            if carried is not None:
                here += carried
            carried = here
        if carried is not None and to_finer is not None:
            carried = to_finer @ carried
    if carried is None:
        carried = np.zeros((fp.canvas_shape[0] * fp.canvas_shape[1], weights.shape[1]), dtype)
    return np.ascontiguousarray(carried[:, :n_frames].T).reshape(n_frames, *fp.canvas_shape)


def random_footprints(canvas, factors, cells_per_level, seed) -> MultiScaleFootprints:
    """Random patches (with holes) on each level's node grid, cells of levels interleaved."""
    rng = np.random.default_rng(seed)
    patches = []
    for factor in factors:
        grid = (node_count(canvas[0], factor), node_count(canvas[1], factor))
        for _ in range(cells_per_level):
            h, w = rng.integers(1, min(grid[0], 9) + 1), rng.integers(1, min(grid[1], 9) + 1)
            row, col = rng.integers(0, grid[0] - h + 1), rng.integers(0, grid[1] - w + 1)
            patch = rng.random((h, w)).astype(np.float32) * rng.choice([1e-3, 1.0, 7.0])
            patch[rng.random((h, w)) < 0.2] = 0.0
            patches.append((factor, (int(row), int(col)), patch))
    order = rng.permutation(len(patches))
    return MultiScaleFootprints.from_levels([patches[i] for i in order], canvas)


def random_weights(n_cells: int, n_frames: int, seed: int) -> np.ndarray:
    """Emission-like weights over six decades, some exact zeros and a few negatives."""
    rng = np.random.default_rng(seed)
    weights = 10.0 ** rng.uniform(-3, 3, (n_cells, n_frames))
    weights[rng.random(weights.shape) < 0.1] = 0.0
    weights[rng.random(weights.shape) < 0.05] *= -1
    return weights


LEVELS = [
    (1, 2, 4, 8),  # the benchmark's mix
    (2, 8),  # no full-resolution level, a grid skipped
    (1,),  # full resolution only (planted footprints)
    (4,),  # one coarse level, refined straight onto the pixels
    (1, 16),
]
CANVASES = [(37, 53), (64, 31), (1, 9), (17, 1)]


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("MINISIM_KERNELS", request.param)
    compiled = multiscale._level_kernels() is not None
    assert compiled == (request.param == "numba")  # the switch really changes the path
    return request.param


@pytest.mark.parametrize("factors", LEVELS, ids=str)
@pytest.mark.parametrize("canvas", CANVASES, ids=str)
@pytest.mark.parametrize("n_frames", [1, 2, 7, 50])
def test_render_bytes_equal_the_scipy_route(backend, factors, canvas, n_frames):
    fp = random_footprints(canvas, factors, cells_per_level=4, seed=n_frames + len(factors))
    weights = random_weights(fp.n_cells, n_frames, seed=n_frames)
    for dtype in (np.float32, np.float64):
        out = fp.render(weights, dtype)
        expected = reference_render(fp, weights, dtype)
        assert out.dtype == dtype and out.shape == (n_frames, *canvas)
        assert out.flags.c_contiguous
        assert out.tobytes() == expected.tobytes()
        assert np.any(out != 0)  # something was drawn


def test_compiled_and_numpy_paths_agree_on_a_large_canvas(monkeypatch):
    pytest.importorskip("numba")
    canvas = (203, 177)  # several pixel tiles, a partial last one
    fp = random_footprints(canvas, (1, 2, 4, 8), cells_per_level=30, seed=11)
    weights = random_weights(fp.n_cells, 33, seed=4)
    outputs = {}
    for name in ("numba", "numpy"):
        monkeypatch.setenv("MINISIM_KERNELS", name)
        outputs[name] = fp.render(weights, np.float32)
    assert outputs["numba"].tobytes() == outputs["numpy"].tobytes()
    assert outputs["numba"].tobytes() == reference_render(fp, weights, np.float32).tobytes()


def test_a_frame_does_not_depend_on_its_chunk(backend):
    fp = random_footprints((45, 38), (1, 2, 4), cells_per_level=6, seed=2)
    weights = random_weights(fp.n_cells, 23, seed=9)
    whole = fp.render(weights, np.float32)
    pieces = [fp.render(weights[:, a:b], np.float32) for a, b in ((0, 1), (1, 8), (8, 23))]
    assert np.concatenate(pieces).tobytes() == whole.tobytes()


def test_render_draws_the_ground_truth_footprints(backend):
    # One cell lit per frame: frame j is cell j's footprint as to_dense gives it.
    fp = random_footprints((41, 36), (1, 2, 4, 8), cells_per_level=2, seed=5)
    movie = fp.render(np.eye(fp.n_cells), np.float32)
    dense = fp.to_dense(0, fp.n_cells, (0, 0, 41, 36))
    np.testing.assert_allclose(movie, dense, rtol=1e-6, atol=1e-12)
    assert (dense.reshape(fp.n_cells, -1).max(axis=1) > 0).all()


def test_no_footprints_renders_black(backend):
    empty = MultiScaleFootprints.full_resolution(Footprints.from_patches([], (5, 7)))
    out = empty.render(np.zeros((0, 3)), np.float32)
    assert out.shape == (3, 5, 7) and out.tobytes() == bytes(3 * 5 * 7 * 4)
