"""The paint rasteriser as it was before it worked in bounded memory (annotations/rasterize.py at commit
084ed87), kept verbatim as the reference: every stored human map was made with it, so the current
rasteriser must give the same bits on every payload it accepts."""
from __future__ import annotations

from typing import Iterable

import numpy as np


def _inside(ax, ay, bx, by, radius, cx, cy):
    """Whether the pixel centre (cx, cy) lies within `radius` of segment a-b: the definition, elementwise."""
    dx, dy = bx - ax, by - ay
    px, py = cx - ax, cy - ay
    length2 = dx * dx + dy * dy
    safe = np.where(length2 > 0, length2, 1.0)
    t = np.where(length2 > 0, np.clip((px * dx + py * dy) / safe, 0.0, 1.0), 0.0)
    px, py = px - t * dx, py - t * dy
    return px * px + py * py <= radius * radius


def _stroke_cover(points: np.ndarray, radius: float, height: int, width: int) -> tuple[int, np.ndarray] | None:
    """The union of the stroke's capsules as (first row, rows x width bool), or None when off the image.

    Each capsule (the pixels within r of one segment) is convex, so it meets each pixel row in one run
    of columns. The run's ends are solved analytically for every (segment, row) at once; the pixels at
    the two ends are then re-decided with the per-pixel definition (`_inside`), so the result is the
    definition's exactly, not a floating-point neighbour of it. Runs are merged with a difference array.
    """
    if len(points) == 1:
        a = b = points
    else:
        a, b = points[:-1], points[1:]
    r = float(radius)
    row0 = np.maximum(np.floor(np.minimum(a[:, 1], b[:, 1]) - r).astype(np.int64), 0)
    row1 = np.minimum(np.ceil(np.maximum(a[:, 1], b[:, 1]) + r).astype(np.int64) + 1, height)
    counts = np.maximum(row1 - row0, 0)
    if counts.sum() == 0:
        return None
    seg = np.repeat(np.arange(len(a)), counts)
    rows = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + row0[seg]
    ax, ay, bx, by = a[seg, 0], a[seg, 1], b[seg, 0], b[seg, 1]
    yc = rows + 0.5
    eps = 1e-9 * max(r, 1.0)

    lo = np.full(len(seg), np.inf)
    hi = np.full(len(seg), -np.inf)
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

    keep = lo <= hi + eps
    seg_rows = rows[keep]
    ax, ay, bx, by, yc, lo, hi = (v[keep] for v in (ax, ay, bx, by, yc, lo, hi))
    # Candidate run of columns whose centre j + 0.5 is in [lo, hi], then the ends by the definition.
    j0 = np.clip(np.ceil(lo - eps - 0.5), -1, width).astype(np.int64)
    j1 = np.clip(np.floor(hi + eps - 0.5), -1, width).astype(np.int64)
    for _ in range(2):
        j0 = np.where(_inside(ax, ay, bx, by, r, j0 - 0.5, yc), j0 - 1, j0)
        j1 = np.where(_inside(ax, ay, bx, by, r, j1 + 1.5, yc), j1 + 1, j1)
    for _ in range(2):
        j0 = np.where((j0 <= j1) & ~_inside(ax, ay, bx, by, r, j0 + 0.5, yc), j0 + 1, j0)
        j1 = np.where((j0 <= j1) & ~_inside(ax, ay, bx, by, r, j1 + 0.5, yc), j1 - 1, j1)
    j0, j1 = np.maximum(j0, 0), np.minimum(j1, width - 1)
    run = j0 <= j1
    if not run.any():
        return None
    seg_rows, j0, j1 = seg_rows[run], j0[run], j1[run]
    first = int(seg_rows.min())
    diff = np.zeros((int(seg_rows.max()) - first + 1, width + 1), dtype=np.int32)
    np.add.at(diff, (seg_rows - first, j0), 1)
    np.add.at(diff, (seg_rows - first, j1 + 1), -1)
    return first, np.cumsum(diff, axis=1)[:, :width] > 0


def paint_mask(strokes: Iterable[dict], height: int, width: int) -> np.ndarray:
    """H x W bool: the painted area after applying every stroke in order.

    Each stroke: {"radius": r (px, > 0), "erase": bool, "points": [[x, y, t_ms], ...]} with at least one
    point; a single point paints a disc.
    """
    mask = np.zeros((height, width), dtype=bool)
    for stroke in strokes:
        value = not bool(stroke.get("erase", False))
        points = np.asarray([p[:2] for p in stroke["points"]], dtype=np.float64).reshape(-1, 2)
        if len(points) == 0:
            continue
        cover = _stroke_cover(points, float(stroke["radius"]), height, width)
        if cover is not None:
            first, rows = cover
            mask[first:first + len(rows)][rows] = value
    return mask
