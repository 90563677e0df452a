"""Scoring an analysis pipeline's output against the ground truth.

Layout is unit-first everywhere: footprints ``A`` are ``(unit, y, x)``, traces ``C`` and
activity ``S`` are ``(unit, frame)``, shifts are ``(frame, 2)`` as (dy, dx) pixels.
Every function accepts numpy arrays, dask arrays or xarray DataArrays (numpy- or
dask-backed), so a recording opened lazily from Zarr can be scored out of core:

* footprint matching reads footprints only: each block of units is made sparse inside
  the dask graph as soon as it is computed, so the dense stack never sits in memory;
* per-pair trace metrics read only the paired rows;
* :func:`footprint_roi_trace` on a dask-backed movie stays lazy: one task per frame
  chunk, each reducing its own frames, so the movie is never held whole in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
import xarray as xr
from dask.base import tokenize
from dask.delayed import Delayed
from scipy.optimize import linear_sum_assignment

__all__ = [
    "DEFAULT_ENERGY_FRAC",
    "DEFAULT_ROI_REL_THRESHOLD",
    "MAX_AUTO_SHIFT_FRACTION",
    "METRICS",
    "SUPPORT_THRESHOLD",
    "ActivityScore",
    "Match",
    "activity_similarity",
    "displacement_rmse",
    "energy_mask",
    "field_pearson",
    "footprint_mask",
    "footprint_roi_trace",
    "global_shift_from_trajectories",
    "hungarian_match",
    "shift_rmse",
    "trace_pearson",
]

#: Fraction of a footprint's total intensity its ``"iou"`` mask keeps (brightest first).
DEFAULT_ENERGY_FRAC = 0.9
#: A ROI mask keeps pixels above this fraction of the footprint's peak.
DEFAULT_ROI_REL_THRESHOLD = 0.18
#: ``shift="auto"`` searches at most this fraction of the field on each axis.
MAX_AUTO_SHIFT_FRACTION = 0.25
#: The binary support used by ``shift="auto"``: summed footprints above this × their peak.
SUPPORT_THRESHOLD = 1e-2
#: The footprint similarity metrics of :func:`hungarian_match`.
METRICS = ("iou", "weighted_jaccard", "cosine")

# Units densified at once when a footprint stack is read block by block.
_BLOCK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- input handling


def _data(x):
    """The array behind an xarray object (numpy or dask), or the input as an array."""
    if isinstance(x, (xr.DataArray, xr.Variable)):
        return x.data
    if isinstance(x, da.Array) or isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def _numpy(x, dtype=np.float64) -> np.ndarray:
    """Bring a (small) array into memory as numpy."""
    data = _data(x)
    if isinstance(data, da.Array):
        data = data.compute()
    return np.asarray(data, dtype=dtype)


def _unit_block_parts(A, func, what: str) -> tuple[tuple[int, int, int], list]:
    """Shape of a (unit, y, x) stack and ``func`` of each block of units, still to run.

    For a dask-backed stack the parts are Delayed: each block is densified, passed
    through ``func`` (which makes it small: sparse rows, compact masks) and released
    inside the graph, so only a few dense blocks are ever in memory. For numpy the parts
    are computed here, a bounded block at a time.
    """
    data = _data(A)
    if data.ndim != 3:
        raise ValueError(
            f"{what} must be a (unit, y, x) stack of footprints; got {data.ndim} dimension(s) "
            f"with shape {data.shape}"
        )
    shape = tuple(int(s) for s in data.shape)
    if isinstance(data, da.Array):
        if any(len(c) > 1 for c in data.chunks[1:]):
            data = data.rechunk({1: -1, 2: -1})
        reduce = dask.delayed(func, pure=True)
        return shape, [reduce(block) for block in data.to_delayed().ravel()]
    per_block = max(1, _BLOCK_BYTES // max(1, 8 * shape[1] * shape[2]))
    return shape, [func(np.asarray(data[i : i + per_block])) for i in range(0, shape[0], per_block)]


def _map_unit_blocks(*stacks, func, what: tuple[str, ...]) -> list[tuple[tuple, list]]:
    """(shape, parts) of each stack, all dask parts computed in one go (shared work once)."""
    planned = [_unit_block_parts(A, func, name) for A, name in zip(stacks, what, strict=True)]
    lazy = [p for _, parts in planned for p in parts if isinstance(p, Delayed)]
    done = iter(dask.compute(*lazy)) if lazy else iter(())
    return [
        (shape, [next(done) if isinstance(p, Delayed) else p for p in parts])
        for shape, parts in planned
    ]


def _csr_rows(block: np.ndarray) -> sp.csr_matrix:
    """(unit, y·x) CSR of a block's positive values (negatives and NaN dropped), float64."""
    flat = block.reshape(block.shape[0], block.shape[1] * block.shape[2])
    rows, cols = np.nonzero(flat > 0)  # row-major: indices come sorted within each row
    values = flat[rows, cols].astype(np.float64)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=flat.shape[0]))])
    return sp.csr_matrix((values, cols, indptr), shape=flat.shape)


def _sparse_stacks(*stacks, what: tuple[str, ...]) -> list[tuple[sp.csr_matrix, tuple]]:
    """A (unit, y·x) CSR copy of each footprint stack, negatives clipped to zero."""
    out = []
    for shape, rows in _map_unit_blocks(*stacks, func=_csr_rows, what=what):
        pixels = shape[1] * shape[2]
        if not rows:
            out.append((sp.csr_matrix((0, pixels)), shape[1:]))
            continue
        stack = sp.csr_matrix(sp.vstack(rows, format="csr"))
        stack.sort_indices()
        out.append((stack, shape[1:]))
    return out


def _pairs(pairing) -> np.ndarray:
    """(k, 2) int array of (est, true) indices from a Match, pairs, or an array."""
    if isinstance(pairing, Match):
        pairing = pairing.pairing
    pairs = np.asarray(list(pairing) if not isinstance(pairing, np.ndarray) else pairing)
    if pairs.size == 0:
        return np.zeros((0, 2), np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairing must be (est, true) index pairs; got shape {pairs.shape}")
    return pairs.astype(np.int64)


def _rows(x, index: np.ndarray, what: str) -> np.ndarray:
    """Rows ``index`` of a (unit, frame) array, in memory as float64 (only those rows)."""
    data = _data(x)
    if data.ndim != 2:
        raise ValueError(f"{what} must be (unit, frame); got shape {data.shape}")
    if index.size and (index.min() < 0 or index.max() >= data.shape[0]):
        raise IndexError(f"{what} has {data.shape[0]} units; the pairing asks for {index.max()}")
    if index.size == 0:
        return np.zeros((0, data.shape[1]))
    return _numpy(data[index])


def _paired_rows(est, true, pairing, what: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = _pairs(pairing)
    a = _rows(est, pairs[:, 0], f"{what}_est")
    b = _rows(true, pairs[:, 1], f"{what}_true")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{what}_est has {a.shape[1]} frames but {what}_true has {b.shape[1]}: compare "
            "traces of the same recording"
        )
    return a, b


# --------------------------------------------------------------------------- footprints


def energy_mask(a, frac: float = DEFAULT_ENERGY_FRAC) -> np.ndarray:
    """The brightest pixels holding ``frac`` of a footprint's total intensity.

    Pixels are taken in descending order until the running sum reaches ``frac`` of the
    total (that pixel included). ``frac = 1`` keeps every positive pixel. Negative values
    count as zero; an all-zero footprint gives an empty mask.
    """
    _check_frac(frac)
    a = np.clip(_numpy(a), 0.0, None)
    flat = a.ravel()
    keep = np.zeros(flat.shape, bool)
    positive = np.flatnonzero(flat > 0)
    keep[positive[_energy_keep(flat[positive], frac)]] = True
    return keep.reshape(a.shape)


def _check_frac(frac: float) -> None:
    if not (0.0 < frac <= 1.0):
        raise ValueError(f"energy_frac={frac!r} must lie in (0, 1]: the share of intensity kept")


def _energy_keep(values: np.ndarray, frac: float) -> np.ndarray:
    """Positions (into ``values``, all > 0) of the energy mask's pixels."""
    if values.size == 0:
        return np.zeros(0, np.int64)
    if frac >= 1.0:
        return np.arange(values.size)
    order = np.argsort(-values, kind="stable")
    cumulative = np.cumsum(values[order])
    k = int(np.searchsorted(cumulative, frac * cumulative[-1], side="left")) + 1
    return order[: min(k, values.size)]


def _energy_masks(stack: sp.csr_matrix, frac: float) -> sp.csr_matrix:
    """Binary CSR energy masks of every row."""
    indptr, indices, data = stack.indptr, stack.indices, stack.data
    rows, cols = [], []
    for i in range(stack.shape[0]):
        lo, hi = indptr[i], indptr[i + 1]
        values = data[lo:hi]
        positive = np.flatnonzero(values > 0)
        kept = positive[_energy_keep(values[positive], frac)]
        cols.append(indices[lo:hi][kept])
        rows.append(np.full(kept.size, i))
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(row.size), (row, col)), shape=stack.shape)


def _similarity(est: sp.csr_matrix, true: sp.csr_matrix, metric: str, frac: float) -> np.ndarray:
    n_est, n_true = est.shape[0], true.shape[0]
    if n_est == 0 or n_true == 0:
        return np.zeros((n_est, n_true))
    if metric == "iou":
        me, mt = _energy_masks(est, frac), _energy_masks(true, frac)
        inter = np.asarray((me @ mt.T).todense())
        union = np.asarray(me.sum(1)) + np.asarray(mt.sum(1)).T - inter
        return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    if metric == "cosine":
        dot = np.asarray((est @ true.T).todense())
        norms = (
            np.sqrt(np.asarray(est.multiply(est).sum(1)))
            * np.sqrt(np.asarray(true.multiply(true).sum(1))).T
        )
        return np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)
    # Weighted Jaccard (Ruzicka) of unit-sum rows: Σmin / Σmax, with Σmax = Σa + Σb − Σmin.
    e, t = _unit_sum(est), _unit_sum(true)
    sums_e, sums_t = np.asarray(e.sum(1)).ravel(), np.asarray(t.sum(1)).ravel()
    overlap = sp.csr_matrix(e.astype(bool).astype(np.float64) @ t.astype(bool).astype(np.float64).T)
    sim = np.zeros((n_est, n_true))
    row = np.zeros(e.shape[1])  # one estimated footprint, scattered densely
    for i in range(n_est):
        partners = overlap.indices[overlap.indptr[i] : overlap.indptr[i + 1]]
        if partners.size == 0:
            continue
        idx = e.indices[e.indptr[i] : e.indptr[i + 1]]
        row[idx] = e.data[e.indptr[i] : e.indptr[i + 1]]
        sub = t[partners]
        mins = np.minimum(row[sub.indices], sub.data)  # 0 where the estimate has no pixel
        smin = np.add.reduceat(mins, sub.indptr[:-1]) if mins.size else np.zeros(len(partners))
        smin[np.diff(sub.indptr) == 0] = 0.0
        smax = sums_e[i] + sums_t[partners] - smin
        sim[i, partners] = np.divide(smin, smax, out=np.zeros_like(smin), where=smax > 0)
        row[idx] = 0.0
    return sim


def _unit_sum(stack: sp.csr_matrix) -> sp.csr_matrix:
    stack = sp.csr_matrix(stack, copy=True)
    stack.eliminate_zeros()
    sums = np.asarray(stack.sum(1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale) @ stack)


def _shift_sparse(stack: sp.csr_matrix, shape: tuple[int, int], shift) -> sp.csr_matrix:
    """Translate every footprint by whole pixels (positive = down/right), zero-filled."""
    dy, dx = shift
    if (dy, dx) == (0, 0):
        return stack
    height, width = shape
    coo = stack.tocoo()
    y, x = np.divmod(coo.col, width)
    y, x = y + dy, x + dx
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    moved = sp.csr_matrix(
        (coo.data[inside], (coo.row[inside], y[inside] * width + x[inside])), shape=stack.shape
    )
    moved.sort_indices()  # raster order within each footprint: ties in masks break alike
    return moved


def _assign(sim: np.ndarray) -> tuple[tuple[tuple[int, int], ...], float]:
    """Optimal one-to-one assignment maximizing total similarity; non-positive pairs dropped."""
    if sim.size == 0:
        return (), 0.0
    rows, cols = linear_sum_assignment(sim, maximize=True)
    pairs = tuple((int(i), int(j)) for i, j in zip(rows, cols, strict=True) if sim[i, j] > 0)
    return pairs, float(sum(sim[i, j] for i, j in pairs))


def _support(stack: sp.csr_matrix, shape) -> np.ndarray | None:
    """Binary support of the summed footprints, or None when the stack has no mass."""
    total = np.asarray(stack.sum(0)).reshape(shape)
    peak = total.max() if total.size else 0.0
    if not peak > 0:
        return None
    return (total > SUPPORT_THRESHOLD * peak).astype(np.float64)


def _phase_correlation_shift(est: sp.csr_matrix, true: sp.csr_matrix, shape) -> tuple[int, int]:
    """Whole-pixel shift moving ``est`` onto ``true``, by phase correlation of supports."""
    sup_e, sup_t = _support(est, shape), _support(true, shape)
    if sup_e is None or sup_t is None:
        return (0, 0)
    cross = np.fft.fft2(sup_t) * np.conj(np.fft.fft2(sup_e))
    cross /= np.abs(cross) + 1e-12
    corr = np.fft.fftshift(np.fft.ifft2(cross).real)
    height, width = shape
    cy, cx = height // 2, width // 2
    ry = min(int(MAX_AUTO_SHIFT_FRACTION * height), height // 2)
    rx = min(int(MAX_AUTO_SHIFT_FRACTION * width), width // 2)
    window = corr[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1]
    iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
    return (int(iy) - ry, int(ix) - rx)


@dataclass(frozen=True, eq=False)
class Match:
    """An optimal one-to-one matching of estimated to true footprints.

    Attributes
    ----------
    similarity_matrix : (n_est, n_true) ndarray
        Similarity of every estimated footprint (after ``shift``) to every true one.
    pairing : tuple of (est, true)
        The optimal assignment, pairs with similarity ≤ 0 dropped.
    metric : str
        ``"iou"``, ``"weighted_jaccard"`` or ``"cosine"``.
    shift : (int, int)
        The whole-pixel (dy, dx) translation applied to the estimate before matching.
    """

    similarity_matrix: np.ndarray
    pairing: tuple[tuple[int, int], ...]
    metric: str = "iou"
    shift: tuple[int, int] = (0, 0)

    @property
    def iou_matrix(self) -> np.ndarray:
        """Alias of :attr:`similarity_matrix` (whatever the metric)."""
        return self.similarity_matrix

    @property
    def n_est(self) -> int:
        return int(self.similarity_matrix.shape[0])

    @property
    def n_true(self) -> int:
        return int(self.similarity_matrix.shape[1])

    @property
    def pair_similarity(self) -> np.ndarray:
        """Similarity of each pair of :attr:`pairing`, in order."""
        return np.array([self.similarity_matrix[i, j] for i, j in self.pairing], float)

    def matched_pairs(self, threshold: float = 0.5) -> tuple[tuple[int, int], ...]:
        """The pairs whose similarity reaches ``threshold`` (the true positives)."""
        return tuple((i, j) for i, j in self.pairing if self.similarity_matrix[i, j] >= threshold)

    def recall(self, threshold: float = 0.5) -> float:
        """True positives / true units (0.0 when there are no true units)."""
        return len(self.matched_pairs(threshold)) / self.n_true if self.n_true else 0.0

    def precision(self, threshold: float = 0.5) -> float:
        """True positives / estimated units (0.0 when nothing was estimated)."""
        return len(self.matched_pairs(threshold)) / self.n_est if self.n_est else 0.0

    @property
    def mean_similarity(self) -> float:
        """Mean similarity over the whole pairing, not thresholded (0.0 if empty)."""
        return float(self.pair_similarity.mean()) if self.pairing else 0.0

    @property
    def mean_iou(self) -> float:
        """Alias of :attr:`mean_similarity`."""
        return self.mean_similarity

    def __repr__(self) -> str:
        return (
            f"Match({self.metric}: {len(self.pairing)} pairs of {self.n_est} est × "
            f"{self.n_true} true, shift={self.shift}, mean={self.mean_similarity:.3f})"
        )


def hungarian_match(
    A_est,
    A_true,
    *,
    metric: str = "iou",
    energy_frac: float = DEFAULT_ENERGY_FRAC,
    shift: tuple[float, float] | str | None = None,
) -> Match:
    """Match estimated footprints to true ones by an optimal assignment.

    Parameters
    ----------
    A_est, A_true : (unit, y, x) array-like
        Footprint stacks on the same field of view (numpy, dask or xarray; a dask-backed
        stack is read one block of units at a time). Negative values count as zero.
    metric : "iou", "weighted_jaccard" or "cosine"
        ``"iou"``: Jaccard index of the binary energy masks (each footprint's brightest
        pixels holding ``energy_frac`` of its intensity). ``"cosine"``: normalized dot
        product. ``"weighted_jaccard"``: Σmin/Σmax of the unit-sum footprints.
    energy_frac : float in (0, 1]
        Share of intensity each ``"iou"`` mask keeps.
    shift : None, (dy, dx) or "auto"
        Whole-pixel translation applied to ``A_est`` (positive = down/right, zero-filled)
        before comparing. A tuple is rounded and always applied. ``"auto"`` estimates it
        by phase correlation of the two stacks' binary supports (searching at most a
        quarter of the field per axis) and adopts it only if it strictly raises the total
        assigned similarity; otherwise the shift is (0, 0).

    Returns
    -------
    Match
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: use one of {', '.join(map(repr, METRICS))}")
    _check_frac(energy_frac)
    (est, shape_e), (true, shape_t) = _sparse_stacks(A_est, A_true, what=("A_est", "A_true"))
    if shape_e != shape_t:
        raise ValueError(
            f"A_est frames are {shape_e} but A_true frames are {shape_t}: footprints must share "
            "the field of view"
        )
    if isinstance(shift, str):
        if shift != "auto":
            raise ValueError(f"shift={shift!r}: use None, a (dy, dx) tuple or 'auto'")
        sim = _similarity(est, true, metric, energy_frac)
        pairing, total = _assign(sim)
        chosen = (0, 0)
        candidate = _phase_correlation_shift(est, true, shape_t)
        if candidate != (0, 0):
            moved = _similarity(_shift_sparse(est, shape_t, candidate), true, metric, energy_frac)
            moved_pairing, moved_total = _assign(moved)
            if moved_total > total:
                sim, pairing, chosen = moved, moved_pairing, candidate
        return Match(sim, pairing, metric, chosen)
    if shift is None:
        offset = (0, 0)
    else:
        dy, dx = shift
        offset = (int(np.round(dy)), int(np.round(dx)))
    sim = _similarity(_shift_sparse(est, shape_t, offset), true, metric, energy_frac)
    pairing, _ = _assign(sim)
    return Match(sim, pairing, metric, offset)


# --------------------------------------------------------------------------- temporal metrics


def _constant(x: np.ndarray) -> np.ndarray:
    """Rows with no variation at all (max == min), or with no samples."""
    if x.shape[-1] == 0:
        return np.ones(x.shape[:-1], bool)
    return np.ptp(x, axis=-1) == 0


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r, NaN where either row is constant."""
    bad = _constant(a) | _constant(b)
    ac = a - a.mean(axis=-1, keepdims=True)
    bc = b - b.mean(axis=-1, keepdims=True)
    num = (ac * bc).sum(axis=-1)
    den = np.sqrt((ac * ac).sum(axis=-1) * (bc * bc).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r = np.clip(r, -1.0, 1.0)
    r[bad] = np.nan
    return r


def trace_pearson(C_est, C_true, pairing) -> np.ndarray:
    """Pearson r between the paired traces, one value per pair.

    Parameters
    ----------
    C_est, C_true : (unit, frame) array-like
        Only the paired rows are read.
    pairing : Match, or iterable of (est, true) indices

    Returns
    -------
    ndarray, shape (n_pairs,)
        NaN where either trace is constant; empty for an empty pairing.
    """
    a, b = _paired_rows(C_est, C_true, pairing, "C")
    return _pearson(a, b)


@dataclass(frozen=True, eq=False)
class ActivityScore:
    """Per-pair agreement of estimated and true activity.

    Attributes
    ----------
    correlation : ndarray
        Pearson r (NaN where either series is constant).
    scale : ndarray
        Least-squares gain α ≥ 0 mapping the estimate onto the truth (``b ≈ α·a + β``).
    variance_explained : ndarray
        1 − SS_res/SS_tot of that fit (NaN where the truth is constant).
    """

    correlation: np.ndarray
    scale: np.ndarray
    variance_explained: np.ndarray

    def __len__(self) -> int:
        return len(self.correlation)


def activity_similarity(S_est, S_true, pairing) -> ActivityScore:
    """How well each estimated activity series explains its true partner.

    The estimate is fitted to the truth by ``b ≈ α·a + β`` with α clipped at 0, so the
    score does not depend on the estimate's units (scale-invariant) and uses amplitudes
    as given (nothing is binarized).

    Parameters
    ----------
    S_est, S_true : (unit, frame) array-like
    pairing : Match, or iterable of (est, true) indices

    Returns
    -------
    ActivityScore
        A constant truth gives α = 0 and NaN variance explained; a constant estimate
        (with a varying truth) gives α = 0 and 0; anti-correlated series give α = 0.
    """
    a, b = _paired_rows(S_est, S_true, pairing, "S")
    corr = _pearson(a, b)
    const_a, const_b = _constant(a), _constant(b)
    ma, mb = a.mean(axis=-1, keepdims=True), b.mean(axis=-1, keepdims=True)
    var_a = ((a - ma) ** 2).mean(axis=-1)
    cov = ((a - ma) * (b - mb)).mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(const_a | const_b, 0.0, np.maximum(0.0, cov / var_a))
    beta = mb[..., 0] - alpha * ma[..., 0]
    residual = b - (alpha[:, None] * a + beta[:, None])
    ss_res = (residual**2).sum(axis=-1)
    ss_tot = ((b - mb) ** 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pve = 1.0 - ss_res / ss_tot
    pve = np.where(const_a, 0.0, pve)
    pve = np.where(const_b, np.nan, pve)
    return ActivityScore(corr, alpha, pve)


def _shifts(x, what: str) -> np.ndarray:
    arr = _numpy(x)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must be (frame, 2) as (dy, dx) pixels; got shape {arr.shape}")
    return arr


def _residual(est, true, correction: bool) -> np.ndarray:
    e, t = _shifts(est, "est"), _shifts(true, "true")
    if e.shape != t.shape:
        raise ValueError(
            f"est has {e.shape[0]} frames but true has {t.shape[0]}: one (dy, dx) per frame"
        )
    return (-e if correction else e) - t


def shift_rmse(est, true, *, correction: bool = False, align: bool = False) -> float:
    """Root-mean-square error of a motion estimate, over all frames and both axes.

    Parameters
    ----------
    est, true : (frame, 2) array-like
        (dy, dx) pixels; ``true`` is the applied motion (``gt.shifts``).
    correction : bool
        ``est`` is a motion *correction* (the negation of the motion), as most
        registration tools report; it is negated before comparing.
    align : bool
        Remove the per-axis mean residual first: registration to a template that is not
        the rest position leaves a constant offset, which this ignores.

    Returns
    -------
    float
        NaN for zero frames.
    """
    residual = _residual(est, true, correction)
    if residual.size == 0:
        return float("nan")
    if align:
        residual = residual - residual.mean(axis=0)
    return float(np.sqrt(np.mean(residual**2)))


def _patch_edges(n_px: int, n_patches: int) -> np.ndarray:
    """Edges of ``n_patches`` equal tiles of ``n_px`` pixels (floor(k·n_px/n_patches))."""
    return (np.arange(n_patches + 1) * n_px) // n_patches


def _patch_means(block: np.ndarray, edges_y: np.ndarray, edges_x: np.ndarray) -> np.ndarray:
    """(frame, y, x, 2) → (frame, n_patch_y, n_patch_x, 2): the mean over each tile."""
    sums = np.add.reduceat(np.add.reduceat(block, edges_y[:-1], axis=1), edges_x[:-1], axis=2)
    counts = np.diff(edges_y)[:, None] * np.diff(edges_x)[None, :]
    return sums / counts[None, :, :, None]


def displacement_rmse(estimate, truth, *, correction: bool = False) -> float:
    """Root-mean-square error of a dense or piecewise-rigid motion estimate.

    Over all frames, pixels (or patches) and both axes, like :func:`shift_rmse`.

    Parameters
    ----------
    estimate : (frame, y, x, 2) or (frame, n_patch_y, n_patch_x, 2) array-like
        (dy, dx) pixels: a dense displacement field, or one shift per patch of a
        piecewise-rigid registration (NoRMCorre-style) whose patches tile the field of
        view in equal parts (patch k along y covers rows ``floor(k·H/n) … floor((k+1)·H/n)
        − 1``). A patch is scored against the truth **averaged over its pixels**: the one
        shift that best (least squares) describes the patch's motion.
    truth : (frame, y, x, 2) array-like
        The applied displacement, ``gt.displacement`` (lazy is fine: it is reduced chunk
        by chunk, never held whole).
    correction : bool
        ``estimate`` is a motion *correction* (the negation of the motion), as
        registration tools report; it is negated before comparing.

    Returns
    -------
    float
        In pixels; NaN for zero frames.
    """
    true = _data(truth)
    if not isinstance(true, da.Array):
        true = np.asarray(true, np.float64)
    if true.ndim != 4 or true.shape[-1] != 2:
        raise ValueError(f"truth must be (frame, y, x, 2) pixels; got shape {true.shape}")
    est = _numpy(estimate)
    if est.ndim != 4 or est.shape[-1] != 2:
        raise ValueError(
            "estimate must be (frame, y, x, 2) or (frame, n_patch_y, n_patch_x, 2) as "
            f"(dy, dx) pixels; got shape {est.shape}"
        )
    n, height, width = true.shape[:3]
    if est.shape[0] != n:
        raise ValueError(f"estimate has {est.shape[0]} frames but truth has {n}")
    n_y, n_x = est.shape[1:3]
    if not (1 <= n_y <= height and 1 <= n_x <= width):
        raise ValueError(
            f"estimate has {n_y}×{n_x} patches for a {height}×{width} px field: give at most "
            "one patch per pixel (a dense estimate has the field's shape)"
        )
    if n == 0:
        return float("nan")
    if (n_y, n_x) != (height, width):
        edges_y, edges_x = _patch_edges(height, n_y), _patch_edges(width, n_x)
        if isinstance(true, da.Array):
            true = true.rechunk({1: -1, 2: -1, 3: -1}).map_blocks(
                _patch_means, edges_y, edges_x, chunks=(true.chunks[0], (n_y,), (n_x,), (2,)),
                dtype=np.float64,
            )  # fmt: skip
        else:
            true = _patch_means(true, edges_y, edges_x)
    residual = (-est if correction else est) - true
    mean_square = (residual * residual).mean()
    if isinstance(mean_square, da.Array):
        mean_square = mean_square.compute()
    return float(np.sqrt(mean_square))


def global_shift_from_trajectories(est, true, *, correction: bool = True) -> tuple[int, int]:
    """The whole-pixel shift that moves footprints of a registered movie onto the truth.

    A pipeline that registers to a template displaced by d from the rest position
    reports ``−(true − d)`` per frame, and its footprints sit at +d. This returns the
    per-axis mean of ``(−est if correction else est) − true`` (= −d), rounded half to
    even, ready for ``hungarian_match(shift=...)``. (0, 0) for zero frames.
    """
    residual = _residual(est, true, correction)
    if residual.size == 0:
        return (0, 0)
    dy, dx = np.round(residual.mean(axis=0))
    return (int(dy), int(dx))


def field_pearson(est, true) -> float:
    """Pearson r of two static fields (e.g. an estimated background vs ``gt.vignette``).

    Flattened, so it ignores any affine rescaling of the estimate; NaN if either is
    constant.
    """
    a, b = _numpy(est), _numpy(true)
    if a.shape != b.shape:
        raise ValueError(f"est has shape {a.shape} but true has {b.shape}")
    return float(_pearson(a.reshape(1, -1), b.reshape(1, -1))[0])


# --------------------------------------------------------------------------- ROI traces


def _check_rel(rel: float) -> None:
    if not (0.0 <= rel < 1.0):
        raise ValueError(f"rel={rel!r} must lie in [0, 1): the fraction of the peak kept")


def footprint_mask(a, rel: float = DEFAULT_ROI_REL_THRESHOLD) -> np.ndarray:
    """Pixels brighter than ``rel`` × the footprint's peak.

    ``a`` is one (y, x) footprint or a (unit, y, x) stack (a peak per unit). A footprint
    whose peak is ≤ 0 gives an all-False mask.
    """
    _check_rel(rel)
    data = _numpy(a)
    if data.ndim not in (2, 3):
        raise ValueError(f"a must be (y, x) or (unit, y, x); got shape {data.shape}")
    peak = data.max(axis=(-2, -1), keepdims=True) if data.size else np.zeros(data.shape)
    return (data > rel * peak) & (peak > 0)


@dataclass(frozen=True, eq=False)
class _Rois:
    """Compact masks: per unit a bounding box and the boolean mask inside it."""

    boxes: np.ndarray  # (n, 4) y0, y1, x0, x1
    masks: tuple[np.ndarray, ...]
    shape: tuple[int, int]

    def __dask_tokenize__(self):
        return (self.boxes.tobytes(), [m.tobytes() for m in self.masks], self.shape)


def _rois(a, rel: float) -> tuple[_Rois, bool]:
    """Compact ROI masks of a footprint or stack, and whether it was a single footprint."""
    data = _data(a)
    single = data.ndim == 2
    stack = data[None] if single else data
    ((shape, parts),) = _map_unit_blocks(stack, func=partial(_block_rois, rel=rel), what=("a",))
    boxes = [box for part_boxes, _ in parts for box in part_boxes]
    masks = tuple(mask for _, part_masks in parts for mask in part_masks)
    return _Rois(np.asarray(boxes, np.int64).reshape(-1, 4), masks, shape[1:]), single


def _block_rois(block: np.ndarray, rel: float) -> tuple[list, list]:
    """Bounding box and the boolean mask inside it, of each footprint of a block."""
    boxes, masks = [], []
    for mask in footprint_mask(block, rel):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size == 0:
            boxes.append((0, 0, 0, 0))
            masks.append(np.zeros((0, 0), bool))
            continue
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        boxes.append((y0, y1, x0, x1))
        masks.append(mask[y0:y1, x0:x1].copy())
    return boxes, masks


def _roi_means(frames: np.ndarray, rois: _Rois) -> np.ndarray:
    """(unit, frame) mean of each ROI in each frame of a block; zeros for empty ROIs.

    Each frame is summed sequentially (a running sum, never numpy's shape-dependent
    pairwise reduction), so the result does not depend on how the movie is chunked.
    """
    out = np.zeros((len(rois.masks), frames.shape[0]))
    for i, ((y0, y1, x0, x1), mask) in enumerate(zip(rois.boxes, rois.masks, strict=True)):
        count = int(mask.sum())
        if count:
            values = np.asarray(frames[:, y0:y1, x0:x1][:, mask], dtype=np.float64)
            out[i] = np.cumsum(values, axis=1)[:, -1] / count
    return out


def footprint_roi_trace(movie, a, rel: float = DEFAULT_ROI_REL_THRESHOLD):
    """Mean of the movie over each footprint's ROI mask (:func:`footprint_mask`), per frame.

    Parameters
    ----------
    movie : (frame, y, x) array-like
        A numpy movie is reduced at once. A dask array (or dask-backed DataArray, e.g.
        ``rec.observed`` of a recording opened from Zarr) gives a **lazy** result with one
        task per frame chunk: the movie streams through, never whole in memory.
    a : (y, x) footprint or (unit, y, x) stack
        Read one block of units at a time; only compact masks are kept.
    rel : float
        Mask threshold relative to each footprint's peak.

    Returns
    -------
    (frame,) for one footprint, (unit, frame) for a stack; zeros for an empty mask.
    numpy for numpy input, dask for dask input, a DataArray (with the ``frame``
    coordinate) for DataArray input.
    """
    _check_rel(rel)
    rois, single = _rois(a, rel)
    data = _data(movie)
    if data.ndim != 3:
        raise ValueError(f"movie must be (frame, y, x); got shape {data.shape}")
    if tuple(data.shape[1:]) != rois.shape:
        raise ValueError(
            f"movie frames are {tuple(data.shape[1:])} but footprints are {rois.shape}: "
            "they must share the field of view"
        )
    n = len(rois.masks)
    if isinstance(data, da.Array):
        if any(len(c) > 1 for c in data.chunks[1:]):
            data = data.rechunk({1: -1, 2: -1})  # whole frames per task; frames stay chunked
        traces = da.blockwise(
            _roi_means,
            "uf",
            data,
            "fyx",
            rois,
            None,
            new_axes={"u": n},
            concatenate=True,
            dtype=np.float64,
            meta=np.zeros((0, 0)),
            name="footprint_roi_trace-" + tokenize(data.name, rois),
        )
    else:
        traces = _roi_means(np.asarray(data), rois)
    if single:
        traces = traces[0]
    if isinstance(movie, xr.DataArray):
        frame_dim = movie.dims[0]
        dims = (frame_dim,) if single else ("cell", frame_dim)
        coords = {frame_dim: movie.indexes[frame_dim]} if frame_dim in movie.indexes else {}
        return xr.DataArray(traces, dims=dims, coords=coords, name="roi_trace")
    return traces
