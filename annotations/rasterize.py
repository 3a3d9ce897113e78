"""Raw participant data -> the participant's map at stimulus resolution (pure numpy, no Django).

Coordinates are stimulus pixels, continuous: pixel (row i, column j) covers [j, j+1) x [i, i+1) and
its centre is (j + 0.5, i + 0.5). Recipes (docs/payloads.md):
- paint: the binary mask of the painted area. A stroke is a round-capped, round-joined polyline of
  radius r (as an HTML canvas draws it); a pixel is painted when its centre lies within r of the
  polyline; erase strokes clear instead; strokes apply in order.
- points (BubbleView clicks, mouse samples): a Gaussian of sigma px per point, evaluated exactly at
  pixel centres, summed, normalised to sum 1 (each participant weighs equally).
Which recipe applies, with which sigma, is `recipes.py`.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

# The rasteriser solves one (segment, pixel row) pair at a time, vectorised over CHUNK_PAIRS pairs per
# pass, so its memory is O(H x W) (the mask and one int32 run-count buffer) plus a constant, whatever
# the strokes; its time is linear in `paint_work`.
CHUNK_PAIRS = 1 << 13
# `paint_work` counts each pixel of a row a stroke touches as 1 / ROW_PIXELS_PER_UNIT of a pair: the
# per-stroke pass that turns run counts into the mask (measured: ~100 pixels cost what one pair costs).
ROW_PIXELS_PER_UNIT = 64


def _segments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): the stroke's segments' ends, n - 1 each; a single point is the segment a-a."""
    return (points, points) if len(points) == 1 else (points[:-1], points[1:])


def _row_ranges(a: np.ndarray, b: np.ndarray, radius: float, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(first row, row count) per segment: the image rows its capsule may reach (count 0: none)."""
    row0 = np.maximum(np.floor(np.minimum(a[:, 1], b[:, 1]) - radius).astype(np.int64), 0)
    row1 = np.minimum(np.ceil(np.maximum(a[:, 1], b[:, 1]) + radius).astype(np.int64) + 1, height)
    return row0, np.maximum(row1 - row0, 0)


def _span(row0: np.ndarray, counts: np.ndarray) -> tuple[int, int]:
    """[first, last): the rows the stroke's segments reach; call only when counts.sum() > 0."""
    reach = counts > 0
    return int(row0[reach].min()), int((row0 + counts)[reach].max())


def _stroke_points(stroke: dict) -> np.ndarray:
    return np.asarray([p[:2] for p in stroke["points"]], dtype=np.float64).reshape(-1, 2)


def paint_work(strokes: Iterable[dict], height: int, width: int) -> int:
    """What `paint_mask` will cost, in (segment, pixel row) pairs, computed in O(points) without
    rasterising: the pairs it solves (each segment's rows, clipped to the image) plus, per stroke, the
    pixels of the rows it touches / ROW_PIXELS_PER_UNIT. Its time is linear in this; its memory is not
    (see CHUNK_PAIRS)."""
    total = 0
    for stroke in strokes:
        points = _stroke_points(stroke)
        if len(points) == 0:
            continue
        a, b = _segments(points)
        row0, counts = _row_ranges(a, b, float(stroke["radius"]), height)
        pairs = int(counts.sum())
        if pairs:
            first, last = _span(row0, counts)
            total += pairs + -(-(last - first) * (width + 1) // ROW_PIXELS_PER_UNIT)
    return total


def _runs(a: np.ndarray, b: np.ndarray, r: float, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For each (segment a-b, pixel row) pair: the run of columns [j0, j1] whose centres lie within r
    of the segment (j0 > j1: none), clipped to the image.

    Each capsule (the pixels within r of one segment) is convex, so it meets each pixel row in one run
    of columns. The run's ends are solved analytically; the pixels at the two ends are then re-decided
    with the per-pixel definition (`_Capsules`), so the result is the definition's exactly, not a
    floating-point neighbour of it.
    """
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    yc = rows + 0.5
    eps = 1e-9 * max(r, 1.0)

    lo = np.full(len(rows), np.inf)
    hi = np.full(len(rows), -np.inf)
    for cx, cy in ((ax, ay), (bx, by)):  # the two round caps
        h2 = r * r - (yc - cy) ** 2
        half = np.sqrt(np.maximum(h2, 0.0))
        ok = h2 >= -eps
        lo = np.where(ok, np.minimum(lo, cx - half), lo)
        hi = np.where(ok, np.maximum(hi, cx + half), hi)
    # The band between them: projection onto the segment in [0, L^2], distance to its line <= r.
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    e = yc - ay
    rl = r * np.sqrt(length2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_lo, p_hi = (-dy * e) / dx, (length2 - dy * e) / dx
        q_lo, q_hi = (dx * e - rl) / dy, (dx * e + rl) / dy
    p_lo, p_hi = np.where(dx > 0, p_lo, p_hi), np.where(dx > 0, p_hi, p_lo)
    flat_x = dx == 0  # projection does not depend on x: all or nothing
    p_all = (dy * e >= 0) & (dy * e <= length2)
    p_lo = np.where(flat_x, np.where(p_all, -np.inf, np.inf), p_lo)
    p_hi = np.where(flat_x, np.where(p_all, np.inf, -np.inf), p_hi)
    q_lo, q_hi = np.where(dy > 0, q_lo, q_hi), np.where(dy > 0, q_hi, q_lo)
    flat_y = dy == 0
    q_all = np.abs(dx * e) <= rl
    q_lo = np.where(flat_y, np.where(q_all, -np.inf, np.inf), q_lo)
    q_hi = np.where(flat_y, np.where(q_all, np.inf, -np.inf), q_hi)
    band_lo, band_hi = ax + np.maximum(p_lo, q_lo), ax + np.minimum(p_hi, q_hi)
    band = (length2 > 0) & (band_lo <= band_hi + eps)
    lo = np.where(band, np.minimum(lo, band_lo), lo)
    hi = np.where(band, np.maximum(hi, band_hi), hi)

    # Candidate run of columns whose centre j + 0.5 is in [lo, hi], then the ends by the definition:
    # grow each end while the next pixel out is inside, then shrink it while its own pixel is not (at
    # most two steps each; a second step is tried only where the first one moved).
    j0 = np.clip(np.ceil(lo - eps - 0.5), -1, width).astype(np.int64)
    j1 = np.clip(np.floor(hi + eps - 0.5), -1, width).astype(np.int64)
    inside = _Capsules(ax, dx, dy, e, r)
    for j, offset, step in ((j0, -0.5, -1), (j1, 1.5, 1)):
        moved = inside.test(j + offset)
        j += step * moved
        again = np.flatnonzero(moved)
        j[again[inside.test(j[again] + offset, again)]] += step
    step0 = (j0 <= j1) & ~inside.test(j0 + 0.5)
    j0 += step0
    step1 = (j0 <= j1) & ~inside.test(j1 + 0.5)
    j1 -= step1
    again = np.flatnonzero(step0 | step1)
    step0 = (j0[again] <= j1[again]) & ~inside.test(j0[again] + 0.5, again)
    j0[again[step0]] += 1
    step1 = (j0[again] <= j1[again]) & ~inside.test(j1[again] + 0.5, again)
    j1[again[step1]] -= 1
    return np.maximum(j0, 0), np.minimum(j1, width - 1)


class _Capsules:
    """The definition, per (segment, row) pair of one chunk: whether the pixel centre (x, row + 0.5)
    lies within r of the pair's segment a-b, i.e. of its closest point a + t (b - a), t in [0, 1]. The
    row's terms are computed once per chunk; `test` can run on a subset of the pairs (`where`)."""

    def __init__(self, ax, dx, dy, py, r):
        self.ax, self.dx, self.dy, self.py, self.pdy = ax, dx, dy, py, py * dy
        length2 = dx * dx + dy * dy
        self.safe = np.where(length2 > 0, length2, 1.0)
        self.r2 = r * r

    def test(self, cx: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        ax, dx, dy, py, pdy, safe = (
            (v if where is None else v[where]) for v in (self.ax, self.dx, self.dy, self.py, self.pdy, self.safe)
        )
        px = cx - ax
        # A zero-length segment has dx = dy = 0, so t * dx = t * dy = 0 and px, py stay as they are.
        t = np.minimum(np.maximum((px * dx + pdy) / safe, 0.0), 1.0)
        px, py = px - t * dx, py - t * dy
        return px * px + py * py <= self.r2


def _stroke_apply(mask: np.ndarray, counts_buffer: np.ndarray, points: np.ndarray, radius: float,
                  value: bool) -> None:
    """Set every pixel of the stroke (the union of its segments' capsules) to `value`, in place.

    counts_buffer: H x (W + 1) int32, all zero on entry and on return. Each run adds +1 at its first
    column and -1 after its last; a running sum along the row is then > 0 exactly on the union.
    """
    height, width = mask.shape
    a, b = _segments(points)
    row0, counts = _row_ranges(a, b, float(radius), height)
    ends = np.cumsum(counts)
    total = int(ends[-1])
    if total == 0:
        return
    flat = counts_buffer.reshape(-1)
    for start in range(0, total, CHUNK_PAIRS):
        pair = np.arange(start, min(start + CHUNK_PAIRS, total), dtype=np.int64)
        seg = np.searchsorted(ends, pair, side="right")
        rows = pair - (ends[seg] - counts[seg]) + row0[seg]
        j0, j1 = _runs(a[seg], b[seg], float(radius), rows, width)
        run = j0 <= j1
        rows, j0, j1 = rows[run], j0[run], j1[run]
        ones = np.ones(len(rows), dtype=np.int32)  # an array, not a scalar: numpy's fast path for add.at
        np.add.at(flat, rows * (width + 1) + j0, ones)
        np.subtract.at(flat, rows * (width + 1) + j1 + 1, ones)
    first, last = _span(row0, counts)
    band = counts_buffer[first:last]
    np.cumsum(band, axis=1, out=band)
    cover = band[:, :width] > 0
    if value:
        mask[first:last] |= cover
    else:
        mask[first:last] &= ~cover
    band[:] = 0


def paint_mask(strokes: Iterable[dict], height: int, width: int) -> np.ndarray:
    """H x W bool: the painted area after applying every stroke in order.

    Each stroke: {"radius": r (px, > 0), "erase": bool, "points": [[x, y, t_ms], ...]} with at least one
    point; a single point paints a disc. Memory: O(H x W) whatever the strokes (about 6 bytes a pixel
    plus a constant); time: linear in `paint_work`, which callers bound before calling.
    """
    mask = np.zeros((height, width), dtype=bool)
    counts_buffer = np.zeros((height, width + 1), dtype=np.int32)
    for stroke in strokes:
        points = _stroke_points(stroke)
        if len(points):
            _stroke_apply(mask, counts_buffer, points, float(stroke["radius"]), not bool(stroke.get("erase", False)))
    return mask


def points_density(points: Sequence[Sequence[float]], height: int, width: int, sigma: float) -> np.ndarray:
    """H x W float64 summing to 1: sum over points of exp(-d^2 / (2 sigma^2)) at pixel centres, normalised.

    Computed as a product of per-axis Gaussians (exact, separable): G = GY^T @ GX. All zeros when
    there are no points.
    """
    pts = np.asarray([p[:2] for p in points], dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros((height, width), dtype=np.float64)
    xs = np.arange(width, dtype=np.float64) + 0.5
    ys = np.arange(height, dtype=np.float64) + 0.5
    gx = np.exp(-((xs[None, :] - pts[:, :1]) ** 2) / (2 * sigma * sigma))
    gy = np.exp(-((ys[None, :] - pts[:, 1:2]) ** 2) / (2 * sigma * sigma))
    density = gy.T @ gx
    total = density.sum()
    return density / total if total > 0 else density


def fixation_map(points: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """H x W bool: pixels that hold at least one point (points outside the image are dropped)."""
    fixations = np.zeros((height, width), dtype=bool)
    pts = np.asarray([p[:2] for p in points], dtype=np.float64).reshape(-1, 2)
    cols, rows = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    keep = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    fixations[rows[keep], cols[keep]] = True
    return fixations
