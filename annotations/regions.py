"""Known regions of catch stimuli and how a response is checked against them (pure numpy/scipy).

A region is stored in stimulus pixel coordinates (x right, y down, continuous; pixel (row i, col j)
covers [j, j+1) x [i, i+1), its centre is (j + 0.5, i + 0.5)), as
    {"boxes": [[x0, y0, x1, y1], ...], "polygons": [[[x, y], [x, y], [x, y], ...], ...]}
Its mask holds the pixels whose centre lies inside any box (x0 <= cx < x1, y0 <= cy < y1) or inside
any polygon (even-odd rule). The checks (docs/tasks.md, "Attention checks"):
- paint: IoU(painted mask, region mask) >= iou_threshold;
- points (bubble clicks, mouse samples): the fraction of points that fall on a region pixel, or on a
  pixel whose centre is within `tolerance` px of a region pixel's centre, >= point_fraction.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

MAX_SHAPES = 50
MAX_VERTICES = 1000


class RegionInvalid(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


REGION_TEXT_HELP = 'a box "x0 y0 x1 y1" (commas allowed) or {"boxes": [...], "polygons": [...]}'


def region_parse(raw: Any) -> dict | list[float] | None:
    """A region as a researcher writes it, before it is checked against the image (`region_clean`):
    a {"boxes", "polygons"} object (or its JSON text), or one box as four numbers (a list, or the text
    "x0 y0 x1 y1" with spaces, commas or semicolons, brackets allowed). Blank text is None.
    RegionInvalid (field known_region) for anything else. The one parser of the upload CSV's column,
    the dashboard's field and the API's."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except ValueError:
                raise RegionInvalid("known_region is not valid JSON", "known_region") from None
        else:
            raw = [part for part in re.split(r"[\s,;]+", text.strip("[]()")) if part]
    if isinstance(raw, dict):
        return raw
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError):
        raise RegionInvalid(f"known_region must be {REGION_TEXT_HELP}", "known_region") from None
    if len(values) != 4 or any(not math.isfinite(v) for v in values):
        raise RegionInvalid(f"known_region must be {REGION_TEXT_HELP}", "known_region")
    return values


def _coordinate(value: Any, field: str, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RegionInvalid(f"{field} must be a finite number, got {value!r}", field)
    if not 0 <= value <= hi:
        raise RegionInvalid(f"{field} = {value} is outside the image (0..{hi})", field)
    return float(value)


def region_clean(raw: Any, *, width: int, height: int) -> dict:
    """The validated region {"boxes": [...], "polygons": [...]}; raises RegionInvalid naming the field.
    It must cover at least one pixel centre."""
    if not isinstance(raw, dict) or not set(raw) <= {"boxes", "polygons"}:
        raise RegionInvalid('a region is an object {"boxes": [[x0, y0, x1, y1], ...], "polygons": [[[x, y], ...], ...]}', "known_region")
    boxes, polygons = raw.get("boxes", []), raw.get("polygons", [])
    if not isinstance(boxes, list) or not isinstance(polygons, list) or len(boxes) + len(polygons) > MAX_SHAPES:
        raise RegionInvalid(f"boxes and polygons must be lists of at most {MAX_SHAPES} shapes in all", "known_region")
    clean_boxes = []
    for i, box in enumerate(boxes):
        field = f"known_region.boxes[{i}]"
        if not isinstance(box, list) or len(box) != 4:
            raise RegionInvalid(f"{field} must be [x0, y0, x1, y1]", field)
        x0, y0 = _coordinate(box[0], f"{field}.x0", width), _coordinate(box[1], f"{field}.y0", height)
        x1, y1 = _coordinate(box[2], f"{field}.x1", width), _coordinate(box[3], f"{field}.y1", height)
        if x1 <= x0 or y1 <= y0:
            raise RegionInvalid(f"{field} must have x0 < x1 and y0 < y1", field)
        clean_boxes.append([x0, y0, x1, y1])
    clean_polygons = []
    for i, polygon in enumerate(polygons):
        field = f"known_region.polygons[{i}]"
        if not isinstance(polygon, list) or not 3 <= len(polygon) <= MAX_VERTICES:
            raise RegionInvalid(f"{field} must be a list of 3 to {MAX_VERTICES} [x, y] vertices", field)
        vertices = []
        for j, vertex in enumerate(polygon):
            if not isinstance(vertex, list) or len(vertex) != 2:
                raise RegionInvalid(f"{field}[{j}] must be [x, y]", f"{field}[{j}]")
            vertices.append([_coordinate(vertex[0], f"{field}[{j}].x", width), _coordinate(vertex[1], f"{field}[{j}].y", height)])
        clean_polygons.append(vertices)
    region = {"boxes": clean_boxes, "polygons": clean_polygons}
    if not region_mask(region, height, width).any():
        raise RegionInvalid("the region covers no pixel centre; draw it larger", "known_region")
    return region


def _polygon_fill(mask: np.ndarray, vertices: Sequence[Sequence[float]]) -> None:
    """Toggle-fill (even-odd) the pixels whose centre lies inside the polygon."""
    height, width = mask.shape
    poly = np.asarray(vertices, dtype=np.float64)
    x0, y0 = max(int(np.floor(poly[:, 0].min())), 0), max(int(np.floor(poly[:, 1].min())), 0)
    x1, y1 = min(int(np.ceil(poly[:, 0].max())) + 1, width), min(int(np.ceil(poly[:, 1].max())) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    cx = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
    cy = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
    inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for (ax, ay), (bx, by) in zip(poly, np.roll(poly, -1, axis=0)):
        if ay == by:
            continue
        crosses = (ay > cy) != (by > cy)  # the edge spans this row of centres (half-open)
        x_at = ax + (cy - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (cx < x_at)
    mask[y0:y1, x0:x1] |= inside


def region_mask(region: dict, height: int, width: int) -> np.ndarray:
    """H x W bool: pixels whose centre is inside any box or polygon of the region."""
    mask = np.zeros((height, width), dtype=bool)
    cx = np.arange(width, dtype=np.float64) + 0.5
    cy = np.arange(height, dtype=np.float64) + 0.5
    for x0, y0, x1, y1 in region.get("boxes", []):
        mask |= ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
    for polygon in region.get("polygons", []):
        shape = np.zeros_like(mask)
        _polygon_fill(shape, polygon)
        mask |= shape
    return mask


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """|a and b| / |a or b| of two bool masks of one shape; 0.0 when both are empty."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def points_inside_fraction(points: Sequence[Sequence[float]], mask: np.ndarray, tolerance: float = 0.0) -> float:
    """Fraction of points [x, y, ...] whose pixel is in `mask` dilated by `tolerance` px (Euclidean,
    centre to centre). 0.0 when there are no points; points outside the image count as outside."""
    pts = np.asarray([p[:2] for p in points], dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return 0.0
    near = mask if tolerance <= 0 else ndimage.distance_transform_edt(~mask) <= tolerance
    height, width = mask.shape
    cols, rows = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    # A point exactly on the far edge (x == width) belongs to the last pixel.
    cols = np.where(pts[:, 0] == width, width - 1, cols)
    rows = np.where(pts[:, 1] == height, height - 1, rows)
    keep = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    hits = np.zeros(len(pts), dtype=bool)
    hits[keep] = near[rows[keep], cols[keep]]
    return float(hits.mean())
