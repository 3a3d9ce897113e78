"""How a participant's raw response becomes their map: the recipes (pure Python/numpy, no Django).

A recipe is a small JSON-able dict stored with every human map, so a map can always be rebuilt from
the raw responses (docs/payloads.md for the payloads):

- paint: ``{"kind": "paint_mask", "version": 1}``. The participant's binary mask at stimulus
  resolution (1.0 painted, 0.0 not). No fixations.
- bubble / mouse: ``{"kind": "gaussian_points", "points": "clicks" | "samples", "sigma_display_px": s,
  "version": 1}``, or with ``"sigma_px"`` instead of ``"sigma_display_px"``. One Gaussian per point,
  evaluated at pixel centres, the sum normalised to 1 (each participant weighs equally), plus the
  binary fixation map (pixels holding a point). sigma is in stimulus pixels: a fixed ``sigma_px``,
  or ``sigma_display_px * stimulus_width / display.width``, i.e. the documented default measured on the
  screen (BubbleView: 25 px; SALICON: 19 px; both at ~500-640 px display sizes) converted with the
  display scale the participant actually had (recorded in the payload's ``display``).
- imported fixations (eye trackers, later webcam gaze): ``{"kind": "gaussian_points", "points":
  "fixations", "sigma_px": s | "sigma_deg": d, "weighting": "none" | "duration", "version": 1}``.
  The same Gaussian per point, plus the same fixation map. The payload is ``{"fixations": [[x, y,
  start_ms, duration_ms], ...], "px_per_degree": p}`` (stimulus px; p: stimulus px per degree of
  visual angle, from the screen geometry and the image's displayed size; null without them). sigma
  in stimulus px is ``sigma_px``, or ``sigma_deg * px_per_degree``. With ``"weighting": "duration"``
  each fixation's Gaussian is weighted by its duration before the map is normalised to sum 1 (so the
  participant still weighs 1). Imported fixations have no default recipe: the import names a sigma.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotations.rasterize import paint_mask, points_density

RECIPE_VERSION = 1
DEFAULT_SIGMA_DISPLAY_PX = {"bubble": 25.0, "mouse": 19.0}
POINTS_FIELD = {"bubble": "clicks", "mouse": "samples"}
FIXATION_KINDS = frozenset(POINTS_FIELD)
IMPORTED_FIXATIONS = "fixations"  # the task kind and points field of imported fixations
WEIGHTINGS = ("none", "duration")
SIGMA_PX_RANGE = (0.5, 2000.0)
SIGMA_DEG_RANGE = (0.01, 30.0)
# Points per pass when summing Gaussians (memory: CHUNK_POINTS x (H + W) float64 a pass).
CHUNK_POINTS = 1024


class RecipeInvalid(ValueError):
    """A recipe that cannot make maps (unknown kind, missing or non-positive sigma...)."""


def recipe_default(task_kind: str) -> dict:
    """The platform's default recipe for a task kind."""
    if task_kind == "paint":
        return {"kind": "paint_mask", "version": RECIPE_VERSION}
    if task_kind in POINTS_FIELD:
        return {
            "kind": "gaussian_points",
            "points": POINTS_FIELD[task_kind],
            "sigma_display_px": DEFAULT_SIGMA_DISPLAY_PX[task_kind],
            "version": RECIPE_VERSION,
        }
    if task_kind == IMPORTED_FIXATIONS:
        raise RecipeInvalid("imported fixations have no default recipe: give sigma_px or sigma_deg")
    raise RecipeInvalid(f"no map recipe for task kind {task_kind!r}")


def recipe_clean(task_kind: str, recipe: dict) -> dict:
    """The recipe, checked against the task kind; raises RecipeInvalid naming the problem."""
    if not isinstance(recipe, dict):
        raise RecipeInvalid("a recipe is a JSON object")
    kind = recipe.get("kind")
    if task_kind == IMPORTED_FIXATIONS:
        return _fixations_recipe_clean(recipe)
    if task_kind == "paint":
        if kind != "paint_mask":
            raise RecipeInvalid(f"paint maps use the paint_mask recipe, not {kind!r}")
        return {"kind": "paint_mask", "version": RECIPE_VERSION}
    if task_kind not in POINTS_FIELD:
        raise RecipeInvalid(f"no map recipe for task kind {task_kind!r}")
    if kind != "gaussian_points":
        raise RecipeInvalid(f"{task_kind} maps use the gaussian_points recipe, not {kind!r}")
    keys = [k for k in ("sigma_px", "sigma_display_px") if recipe.get(k) is not None]
    if len(keys) != 1:
        raise RecipeInvalid("give exactly one of sigma_px (stimulus px) or sigma_display_px (screen px)")
    sigma = recipe[keys[0]]
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not np.isfinite(sigma) or not 0.5 <= sigma <= 2000:
        raise RecipeInvalid(f"{keys[0]} must be a number between 0.5 and 2000, got {sigma!r}")
    return {"kind": kind, "points": POINTS_FIELD[task_kind], keys[0]: float(sigma), "version": RECIPE_VERSION}


def _not_a_number(value) -> bool:
    return isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value)


def _fixations_recipe_clean(recipe: dict) -> dict:
    """The imported-fixations recipe: one sigma (px or degrees) and a weighting."""
    if recipe.get("kind") != "gaussian_points":
        raise RecipeInvalid(f"imported fixations use the gaussian_points recipe, not {recipe.get('kind')!r}")
    keys = [k for k in ("sigma_px", "sigma_deg") if recipe.get(k) is not None]
    if len(keys) != 1:
        raise RecipeInvalid("give exactly one of sigma_px (stimulus px) or sigma_deg (degrees of visual angle)")
    sigma, (lo, hi) = recipe[keys[0]], SIGMA_PX_RANGE if keys[0] == "sigma_px" else SIGMA_DEG_RANGE
    if _not_a_number(sigma) or not lo <= sigma <= hi:
        raise RecipeInvalid(f"{keys[0]} must be a number between {lo:g} and {hi:g}, got {sigma!r}")
    weighting = recipe.get("weighting", "none")
    if weighting not in WEIGHTINGS:
        raise RecipeInvalid(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    return {"kind": "gaussian_points", "points": IMPORTED_FIXATIONS, keys[0]: float(sigma), "weighting": weighting,
            "version": RECIPE_VERSION}


def sigma_px(recipe: dict, payload: dict, width: int) -> float:
    """The Gaussian sigma in stimulus pixels for one response (see the module docstring)."""
    if recipe.get("sigma_px") is not None:
        return float(recipe["sigma_px"])
    if recipe.get("sigma_deg") is not None:
        per_degree = payload.get("px_per_degree")
        if _not_a_number(per_degree) or not per_degree > 0:
            raise RecipeInvalid("a sigma in degrees needs the viewing geometry, and this data has none "
                                "(no px_per_degree): give sigma_px instead")
        return float(recipe["sigma_deg"]) * float(per_degree)
    display = payload.get("display") or {}
    shown = float(display.get("width") or width)
    return float(recipe["sigma_display_px"]) * width / shown


@dataclass(frozen=True)
class ParticipantMap:
    """One participant's map of one stimulus (stimulus resolution, H x W).

    density: float64; paint: 0/1 mask; points: sums to 1 (all zero when there is no point).
    fixations: int32 count of points per pixel (None for paint). sigma_px: None for paint.
    """

    density: np.ndarray
    fixations: np.ndarray | None
    sigma_px: float | None


def participant_map(payload: dict, recipe: dict, *, height: int, width: int) -> ParticipantMap:
    """The participant's map, exactly as the recipe says (deterministic: same input, same bits)."""
    kind = recipe.get("kind")
    if kind == "paint_mask":
        mask = paint_mask(payload["strokes"], height, width)
        return ParticipantMap(mask.astype(np.float64), None, None)
    if kind == "gaussian_points":
        points = payload.get(recipe["points"]) or []
        sigma = sigma_px(recipe, payload, width)
        if recipe["points"] == IMPORTED_FIXATIONS:
            density = gaussian_density(points, height, width, sigma, weights=_weights(points, recipe))
        else:
            density = points_density(points, height, width, sigma)
        counts = fixation_counts(points, height, width)
        return ParticipantMap(density, counts, sigma)
    raise RecipeInvalid(f"unknown recipe kind {kind!r}")


def _weights(points, recipe: dict) -> np.ndarray | None:
    """Per-point weights: the durations (ms) for duration weighting, else None (equal weights)."""
    if recipe.get("weighting", "none") != "duration":
        return None
    durations = [p[3] if len(p) > 3 else None for p in points]
    if any(d is None or _not_a_number(d) or not d > 0 for d in durations):
        raise RecipeInvalid("duration weighting needs every fixation's duration (a number > 0 ms)")
    return np.asarray(durations, dtype=np.float64)


def gaussian_density(points, height: int, width: int, sigma: float, *, weights: np.ndarray | None = None) -> np.ndarray:
    """H x W float64 summing to 1: sum over points of w_i exp(-d^2 / (2 sigma^2)) at pixel centres,
    normalised (all zero when there is no point). Equal weights give `rasterize.points_density`'s
    map -- the same bits for up to CHUNK_POINTS points; beyond, the sum is taken CHUNK_POINTS
    points at a time, so memory stays CHUNK_POINTS x (H + W) floats whatever the count."""
    pts = np.asarray([p[:2] for p in points], dtype=np.float64).reshape(-1, 2)
    total = np.zeros((height, width), dtype=np.float64)
    xs = np.arange(width, dtype=np.float64) + 0.5
    ys = np.arange(height, dtype=np.float64) + 0.5
    for start in range(0, len(pts), CHUNK_POINTS):
        chunk = pts[start:start + CHUNK_POINTS]
        gx = np.exp(-((xs[None, :] - chunk[:, :1]) ** 2) / (2 * sigma * sigma))
        gy = np.exp(-((ys[None, :] - chunk[:, 1:2]) ** 2) / (2 * sigma * sigma))
        if weights is not None:
            gy = gy * weights[start:start + CHUNK_POINTS, None]
        total += gy.T @ gx
    norm = total.sum()
    return total / norm if norm > 0 else total


def fixation_counts(points, height: int, width: int) -> np.ndarray:
    """H x W int32: how many points fall in each pixel (points outside the image are dropped)."""
    counts = np.zeros((height, width), dtype=np.int32)
    pts = np.asarray([p[:2] for p in points], dtype=np.float64).reshape(-1, 2)
    if len(pts):
        cols, rows = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
        keep = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        np.add.at(counts, (rows[keep], cols[keep]), 1)
    return counts


__all__ = [
    "FIXATION_KINDS",
    "IMPORTED_FIXATIONS",
    "ParticipantMap",
    "RecipeInvalid",
    "fixation_counts",
    "gaussian_density",
    "participant_map",
    "recipe_clean",
    "recipe_default",
    "sigma_px",
]
