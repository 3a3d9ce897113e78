"""How a participant's raw response becomes their map: the recipes (pure Python/numpy, no Django).

A recipe is a small JSON-able dict stored with every human map, so a map can always be rebuilt from
the raw responses (REFERENCE.md section 2; docs/payloads.md for the payloads):

- paint: ``{"kind": "paint_mask", "version": 1}``. The participant's binary mask at stimulus
  resolution (1.0 painted, 0.0 not). No fixations.
- bubble / mouse: ``{"kind": "gaussian_points", "points": "clicks" | "samples", "sigma_display_px": s,
  "version": 1}``, or with ``"sigma_px"`` instead of ``"sigma_display_px"``. One Gaussian per point,
  evaluated at pixel centres, the sum normalised to 1 (each participant weighs equally), plus the
  binary fixation map (pixels holding a point). sigma is in stimulus pixels: a fixed ``sigma_px``,
  or ``sigma_display_px * stimulus_width / display.width``, i.e. the documented default measured on the
  screen (BubbleView: 25 px; SALICON: 19 px; both at ~500-640 px display sizes) converted with the
  display scale the participant actually had (recorded in the payload's ``display``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotations.rasterize import paint_mask, points_density

RECIPE_VERSION = 1
DEFAULT_SIGMA_DISPLAY_PX = {"bubble": 25.0, "mouse": 19.0}
POINTS_FIELD = {"bubble": "clicks", "mouse": "samples"}
FIXATION_KINDS = frozenset(POINTS_FIELD)


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
    raise RecipeInvalid(f"no map recipe for task kind {task_kind!r}")


def recipe_clean(task_kind: str, recipe: dict) -> dict:
    """The recipe, checked against the task kind; raises RecipeInvalid naming the problem."""
    if not isinstance(recipe, dict):
        raise RecipeInvalid("a recipe is a JSON object")
    kind = recipe.get("kind")
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


def sigma_px(recipe: dict, payload: dict, width: int) -> float:
    """The Gaussian sigma in stimulus pixels for one response (see the module docstring)."""
    if recipe.get("sigma_px") is not None:
        return float(recipe["sigma_px"])
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
        density = points_density(points, height, width, sigma)
        counts = fixation_counts(points, height, width)
        return ParticipantMap(density, counts, sigma)
    raise RecipeInvalid(f"unknown recipe kind {kind!r}")


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
    "ParticipantMap",
    "RecipeInvalid",
    "fixation_counts",
    "participant_map",
    "recipe_clean",
    "recipe_default",
    "sigma_px",
]
