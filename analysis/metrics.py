"""Saliency map comparison metrics (pure numpy/scipy, no Django).

P is the model map, Q the human map (continuous), F a binary fixation map (any dtype; non-zero means
fixated). Everything is computed in float64. If shapes differ, P is resized to Q's (or F's) shape:
bilinear, antialiased when shrinking (`resize_to`, Pillow's triangle filter computed in float64).
Undefined results are NaN, never raised: a constant map, no fixation, any non-finite input value, and
negative input to KLD (a divergence of distributions).

Public names: `pcc`, `sim`, `iou_top(p, q, fraction)`, `spearman`, `nss`, `auc_judd`, `kld`, plus the
helpers `resize_to`, `top_region`, `rank_average`. Conventions that differ from pysaliency (MIT's):
SIM min-max normalises each map first; NSS uses the sample std (ddof=1); KLD is MIT's `KLdiv.m`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

EPS = 2.2204e-16  # MIT KLdiv.m's eps
NAN = float("nan")


# --- resizing -------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _resample_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size x in_size) float64 weights of Pillow's bilinear (triangle) resampling.

    The same coefficients as Pillow's `precompute_coeffs` (and torch's `antialias=True`): the
    filter's support widens by the scale factor when shrinking, which is the antialiasing.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        taps = np.arange(lo, hi, dtype=np.float64)
        w = np.clip(1.0 - np.abs((taps - centre + 0.5) / filterscale), 0.0, None)
        total = w.sum()
        if total > 0:
            weights[out, lo:hi] = w / total
    weights.setflags(write=False)
    return weights


def resize_to(p: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """P (H x W) resized to `shape` (rows, cols) in float64: separable bilinear, antialiased when
    shrinking (Pillow's BILINEAR coefficients). Returns P itself (as float64) when shapes agree."""
    p = np.asarray(p, dtype=np.float64)
    shape = (int(shape[0]), int(shape[1]))
    if p.shape == shape:
        return p
    if p.ndim != 2 or min(p.shape) < 1 or min(shape) < 1:
        raise ValueError(f"cannot resize a map of shape {p.shape} to {shape}")
    rows = _resample_weights(p.shape[0], shape[0])
    cols = _resample_weights(p.shape[1], shape[1])
    return rows @ p @ cols.T


def _pair(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(q, dtype=np.float64)
    return resize_to(p, q.shape), q


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a * b) of two 1-D float64 arrays without BLAS: numpy's own SIMD loop is as fast for these
    sizes and never waits on BLAS worker threads, which stall on a busy machine."""
    return float(np.einsum("i,i->", a, b))


def _finite(*arrays: np.ndarray) -> bool:
    return all(np.isfinite(a.sum()) for a in arrays)


# --- continuous map vs continuous map ----------------------------------------------------------


@dataclass(frozen=True)
class Centred:
    """A map flattened with its mean removed, and the norm of that (for Pearson correlations: a map
    scored many times is centred once, `scoring.HumanReference`)."""

    values: np.ndarray
    norm: float


def centred(m: np.ndarray) -> Centred:
    flat = m.ravel() - m.mean()
    return Centred(flat, float(np.sqrt(dot(flat, flat))))


def pearson_of_centred(a: Centred, b: Centred) -> float:
    """The Pearson correlation of two centred maps, in [-1, 1]; NaN when either is constant."""
    denominator = a.norm * b.norm
    if denominator == 0 or not np.isfinite(denominator):
        return NAN
    return float(np.clip(dot(a.values, b.values) / denominator, -1.0, 1.0))


def _pearson_flat(a: np.ndarray, b: np.ndarray) -> float:
    return pearson_of_centred(centred(a), centred(b))


def pcc(p: np.ndarray, q: np.ndarray) -> float:
    """Pearson correlation of the flattened maps, in [-1, 1]; NaN when either map is constant."""
    p, q = _pair(p, q)
    return _pearson_flat(p, q)


def sim_normalise(m: np.ndarray) -> np.ndarray | None:
    """MIT `similarity.m`'s normalisation: min-max to [0, 1], then divided by the sum.

    An all-zero map stays zero; a constant non-zero map is undefined (None); non-finite input too.
    """
    m = np.asarray(m, dtype=np.float64)
    lo, hi = m.min(), m.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    if hi == lo:
        return np.zeros_like(m) if hi == 0 else None
    shifted = m - lo
    shifted /= shifted.sum()
    return shifted


def sim(p: np.ndarray, q: np.ndarray) -> float:
    """Histogram intersection sum(min(P', Q')) of the min-max, then sum, normalised maps, in [0, 1].

    An all-zero map scores 0 against anything; a constant non-zero map gives NaN.
    """
    p, q = _pair(p, q)
    return sim_of_normalised(sim_normalise(p), sim_normalise(q))


def sim_of_normalised(pn: np.ndarray | None, qn: np.ndarray | None) -> float:
    """sum(min(P', Q')) of two `sim_normalise`d maps (NaN when either is undefined); overwrites pn."""
    if pn is None or qn is None:
        return NAN
    return float(np.minimum(pn, qn, out=pn).sum())


def top_region(m: np.ndarray, fraction: float) -> np.ndarray:
    """Bool map of M's top-`fraction` region: pixels at or above the (1 - fraction) linear percentile
    of M (ties at the threshold included), never those at M's minimum (its floor value).

    So a binary paint mask covering 12% has its painted 12% as its top-30% region, not the whole
    image (the zero tie is the floor), and a constant map has an empty region.
    """
    return top_regions(m, (fraction,))[0]


def top_regions(m: np.ndarray, fractions) -> list[np.ndarray]:
    """`top_region` for each fraction, with one percentile call and one floor mask."""
    if not all(0 < f <= 1 for f in fractions):
        raise ValueError(f"every fraction must be in (0, 1], got {list(fractions)}")
    m = np.asarray(m, dtype=np.float64)
    above_floor = m > m.min()
    cuts = np.percentile(m, [100.0 * (1.0 - f) for f in fractions])
    return [(m >= cut) & above_floor for cut in cuts]


def region_iou(a: np.ndarray, b: np.ndarray) -> float:
    """count(A and B) / count(A or B) of two top regions; NaN when either is empty (a constant map
    has no top region, so there is nothing to compare)."""
    a_count, b_count = np.count_nonzero(a), np.count_nonzero(b)
    if a_count == 0 or b_count == 0:
        return NAN
    both = np.count_nonzero(a & b)
    return float(both / (a_count + b_count - both))


def iou_top(p: np.ndarray, q: np.ndarray, fraction: float) -> float:
    """Intersection over union of the top-`fraction` regions of P and Q (`top_region`), in [0, 1].

    NaN when either map is constant (no top region) or holds a non-finite value.
    """
    p, q = _pair(p, q)
    if not _finite(p, q):
        return NAN
    return region_iou(top_region(p, fraction), top_region(q, fraction))


def rank_average(x: np.ndarray) -> np.ndarray:
    """1-based ranks of the flattened x with ties given their average rank (scipy's
    `rankdata(method='average')`), float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    sorter = np.argsort(x)
    ordered = x[sorter]
    first = np.empty(n, dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    group = np.cumsum(first) - 1  # 0-based tie group of each sorted position
    bounds = np.flatnonzero(np.append(first, True))  # start of each group, then n
    average = 0.5 * (bounds[:-1] + bounds[1:] + 1)  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(n, dtype=np.float64)
    ranks[sorter] = average[group]
    return ranks


def spearman(p: np.ndarray, q: np.ndarray) -> float:
    """Spearman's rho of the flattened maps (Pearson of average ranks, as `scipy.stats.spearmanr`);
    NaN when either map is constant or holds a non-finite value."""
    p, q = _pair(p, q)
    if not _finite(p, q):
        return NAN
    return _pearson_flat(rank_average(p), rank_average(q))


def kld_normalise(m: np.ndarray) -> np.ndarray | None:
    """M divided by its sum (an all-zero map kept zero), float64; None when M holds a negative or
    non-finite value (KLD compares distributions: such a map is undefined, not clipped)."""
    m = np.asarray(m, dtype=np.float64)
    total = m.sum()
    if not np.isfinite(total) or (m.size and m.min() < 0):
        return None
    return m / total if total != 0 else m


def kld_of_normalised(p: np.ndarray, q: np.ndarray) -> float:
    """sum Q * log(eps + Q / (P + eps)) of two `kld_normalise`d maps (NaN if not finite)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float((q * np.log(EPS + q / (p + EPS))).sum())
    return value if np.isfinite(value) else NAN


def kld(p: np.ndarray, q: np.ndarray) -> float:
    """KL divergence of Q from P, MIT `KLdiv.m`: P and Q divided by their sums (an all-zero map kept
    zero), then sum Q * log(eps + Q / (P + eps)) with eps = 2.2204e-16 and the natural log. >= 0 for
    non-negative maps; lower is better. NaN when either map holds a negative or non-finite value."""
    p, q = _pair(p, q)
    pn, qn = kld_normalise(p), kld_normalise(q)
    if pn is None or qn is None:
        return NAN
    return kld_of_normalised(pn, qn)


# --- continuous map vs fixations -------------------------------------------------------------


def _fixated(p: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(f)
    return resize_to(p, f.shape), f.astype(bool, copy=False)


def nss(p: np.ndarray, f: np.ndarray) -> float:
    """Normalised scanpath saliency: P z-scored (sample std, ddof=1, as MIT `NSS.m`), averaged over
    the fixated pixels (each pixel once however many fixations it holds). NaN when P is constant,
    nothing is fixated, or P holds a non-finite value. The variance comes from one pass (sum and
    sum of squares), with a second, centred pass where that would lose precision."""
    p, fixated = _fixated(p, f)
    n = p.size
    if n < 2 or not fixated.any():
        return NAN
    flat = p.ravel()
    mean = float(flat.sum()) / n
    squares = dot(flat, flat)
    variance = (squares - n * mean * mean) / (n - 1)
    if not variance > 1e-6 * squares / n:  # cancellation (a large offset) or a constant map: two passes
        centred = flat - mean
        variance = dot(centred, centred) / (n - 1)
    std = np.sqrt(variance)
    if std == 0 or not np.isfinite(std):
        return NAN
    return float((p[fixated].mean() - mean) / std)


def counts_at_or_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """count(values >= t) for each of the ascending, distinct, finite `thresholds`, exactly.

    Small arrays: sort and binary-search. Otherwise one pass puts every value in one of n / 4 (at most
    65536) equal-width buckets over [thresholds[0], max] by a monotone formula, a histogram gives the counts
    of whole buckets above each threshold's bucket, and only the values sharing a bucket with a
    threshold are compared exactly (a few per threshold). O(n) instead of O(n log n).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = thresholds[0], flat.max()
    buckets = int(min(1 << 16, max(1024, flat.size // 4)))
    scale = (buckets - 1) / (hi - lo) if hi > lo else np.inf
    if flat.size < 10_000 or not np.isfinite(scale):
        ordered = np.sort(flat)
        return ordered.size - np.searchsorted(ordered, thresholds, side="left")
    y = flat - lo
    y *= scale
    y += 1.0  # below lo -> [0, 1): bucket 0; lo .. max -> buckets 1 .. buckets
    np.clip(y, 0.0, buckets + 0.5, out=y)
    bucket = y.astype(np.intp)
    own = np.clip((thresholds - lo) * scale + 1.0, 0.0, buckets + 0.5).astype(np.intp)  # same formula
    at_or_above_bucket = np.append(np.cumsum(np.bincount(bucket, minlength=buckets + 2)[::-1])[::-1], 0)
    shared = np.zeros(buckets + 2, dtype=bool)
    shared[own] = True
    pick = shared[bucket]
    near, near_bucket = flat[pick], bucket[pick]
    order = np.argsort(near, kind="stable")  # buckets are monotone in value: sorted together
    near, near_bucket = near[order], near_bucket[order]
    # whole buckets above t's own bucket, plus the values in t's bucket that are >= t
    in_own_bucket_at_or_above = (near.size - np.searchsorted(near, thresholds, side="left")) - (
        near.size - np.searchsorted(near_bucket, own, side="right")
    )
    return at_or_above_bucket[own + 1] + in_own_bucket_at_or_above


def auc_judd(p: np.ndarray, f: np.ndarray) -> float:
    """AUC-Judd: thresholds at P's values on the fixated pixels; true positive rate over fixated,
    false positive rate over unfixated pixels; the curve from (0, 0) to (1, 1) integrated by the
    trapezoid rule, no jitter. Equals pysaliency `general_roc(P[F], P[~F], judd=1)`.

    NaN when nothing (or everything) is fixated, or P holds a non-finite value.
    Cost: a sort of the fixated values and `counts_at_or_above` over the whole map
    (count(unfixated >= t) = count(all >= t) - count(fixated >= t)); the unfixated pixels are never
    gathered or sorted on their own.
    """
    p, fixated = _fixated(p, f)
    flat, fixated = p.ravel(), fixated.ravel()
    positives = flat[fixated]
    n_pos = positives.size
    n_neg = flat.size - n_pos
    if n_pos == 0 or n_neg == 0 or not np.isfinite(flat.sum()):
        return NAN
    positives.sort()
    thresholds = np.unique(positives)  # ascending, distinct
    tp = n_pos - np.searchsorted(positives, thresholds, side="left")
    fp = counts_at_or_above(flat, thresholds) - tp
    # descending thresholds; (0, 0) first, (1, 1) last (pysaliency's max and min sentinels)
    tpr = np.concatenate(([0.0], tp[::-1] / n_pos, [1.0]))
    fpr = np.concatenate(([0.0], fp[::-1] / n_neg, [1.0]))
    return float(np.trapezoid(tpr, fpr))
