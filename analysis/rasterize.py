"""Raw participant data -> the participant's map at stimulus resolution (pure numpy, no Django).

Coordinates are stimulus pixels, continuous: pixel (row i, column j) covers [j, j+1) x [i, i+1) and
its centre is (j + 0.5, i + 0.5). Recipes (REFERENCE.md section 2):
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


def _capsule_fill(mask: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float, value: bool) -> None:
    """Set `value` on pixels whose centre is within `radius` of segment a-b (x, y in pixels)."""
    height, width = mask.shape
    lo = np.floor(np.minimum(a, b) - radius).astype(int)
    hi = np.ceil(np.maximum(a, b) + radius).astype(int)
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0] + 1, width), min(hi[1] + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5
    ys = np.arange(y0, y1, dtype=np.float64) + 0.5
    px, py = xs[None, :] - a[0], ys[:, None] - a[1]
    d = b - a
    length2 = float(d @ d)
    if length2 > 0:
        t = np.clip((px * d[0] + py * d[1]) / length2, 0.0, 1.0)
        px, py = px - t * d[0], py - t * d[1]
    inside = px * px + py * py <= radius * radius
    mask[y0:y1, x0:x1][inside] = value


def paint_mask(strokes: Iterable[dict], height: int, width: int) -> np.ndarray:
    """H x W bool: the painted area after applying every stroke in order.

    Each stroke: {"radius": r (px, > 0), "erase": bool, "points": [[x, y, t_ms], ...]} with at least one
    point; a single point paints a disc.
    """
    mask = np.zeros((height, width), dtype=bool)
    for stroke in strokes:
        radius = float(stroke["radius"])
        value = not bool(stroke.get("erase", False))
        points = np.asarray([p[:2] for p in stroke["points"]], dtype=np.float64)
        if len(points) == 1:
            _capsule_fill(mask, points[0], points[0], radius, value)
        for start, end in zip(points[:-1], points[1:]):
            _capsule_fill(mask, start, end, radius, value)
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
