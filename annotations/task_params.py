"""A study's task parameters: validation, defaults, and the per-trial geometry (pure Python, no Django).

`Study.task_params` holds only what the researcher set; `task_params_resolve` fills in the defaults
below and refuses anything else, naming the field. `trial_geometry` turns the resolved parameters into
what one trial shows: the display size in CSS pixels and every size in **stimulus pixels**, every time
in **milliseconds**. docs/tasks.md is the researcher's reference for all of this.

Units: with `"units": "px"` (default) `display_size` and every size are CSS pixels *at the display
size*; with `"units": "deg"` they are degrees of visual angle, converted with the participant's screen
calibration (credit-card width -> px/cm) at `viewing_distance_cm` (default 57 cm, where 1 cm ~ 1 deg).
Either way a size becomes stimulus pixels by the same factor as the image, so a smaller screen that
shows the image smaller keeps every size in proportion to it.
"""
from __future__ import annotations

import copy
import math
from typing import Any

CARD_WIDTH_CM = 8.56  # ISO/IEC 7810 ID-1 (credit card) long side
DEFAULT_VIEWING_DISTANCE_CM = 57.0

KINDS = ("paint", "bubble", "mouse")

# Sizes for "px" and "deg" studies; at 57 cm and ~38.5 CSS px/cm, 30 px ~ 0.8 deg and 500 px ~ 13 deg.
SIZE_DEFAULTS = {
    "px": {"display_size": 500.0, "brush_radii": [6.0, 14.0, 28.0], "blur_sigma": 30.0, "radius": 30.0},
    "deg": {"display_size": 13.0, "brush_radii": [0.15, 0.35, 0.75], "blur_sigma": 0.8, "radius": 0.8},
}
# Non-size defaults. Bubble defaults depend on the variant (BubbleView, Kim et al. 2017).
BUBBLE_VARIANTS = {
    "free": {"time_limit_s": 10.0, "min_clicks": 2, "min_chars": 0},
    "description": {"time_limit_s": None, "min_clicks": 10, "min_chars": 150},
}
PAINT_DEFAULTS = {"time_limit_s": None, "min_area": 0.005, "max_area": 0.9}
MOUSE_DEFAULTS = {"viewing_s": 5.0, "sample_interval_ms": 10.0, "min_samples": 20}
CATCH_DEFAULTS = {
    "iou_threshold": 0.55,  # paint: IoU(mask, known region) >= this (TurkEyes sentinels)
    "point_fraction": 0.5,  # bubble/mouse: at least this fraction of clicks/samples inside the region
    "point_tolerance_px": 0.0,  # a point within this many stimulus px of the region counts as inside
    "pass_fraction": 0.95,  # catch trials passed / answered must reach this (ClickMe: accuracy >= 0.95)
    "per_participant": None,  # catch trials per participant (None: every catch stimulus of the study)
    "failed_code": "",  # completion code shown to excluded participants (empty: the study's own)
}
COMPLETION_DEFAULTS = {"redirect_delay_s": None}

TOP_KEYS = {"units", "viewing_distance_cm", "display_size", "paint", "bubble", "mouse", "catch", "completion"}


class TaskParamsInvalid(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _number(value: Any, field: str, *, lo: float, hi: float, integer: bool = False, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TaskParamsInvalid(f"{field} must be a finite number, got {value!r}", field)
    if (value <= lo if lo_open else value < lo) or value > hi:
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise TaskParamsInvalid(f"{field} must be {bound} and <= {hi}, got {value}", field)
    if integer:
        if value != int(value):
            raise TaskParamsInvalid(f"{field} must be a whole number, got {value}", field)
        return int(value)
    return float(value)


def _optional(value: Any, field: str, **bounds) -> float | None:
    return None if value is None else _number(value, field, **bounds)


def _section(raw: dict, name: str, allowed: set[str]) -> dict:
    section = raw.get(name, {})
    if not isinstance(section, dict):
        raise TaskParamsInvalid(f"{name} must be an object", name)
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise TaskParamsInvalid(f"{name}.{unknown[0]} is not a parameter; use {sorted(allowed)}", f"{name}.{unknown[0]}")
    return section


def _size(value: Any, field: str, units: str) -> float:
    return _number(value, field, lo=0, hi=5000 if units == "px" else 120, lo_open=True)


def task_params_resolve(raw: Any) -> dict:
    """Every parameter with its default filled in; raises TaskParamsInvalid naming the first bad field."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise TaskParamsInvalid("task_params must be an object", "task_params")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise TaskParamsInvalid(f"{unknown[0]} is not a task parameter; use {sorted(TOP_KEYS)}", unknown[0])
    units = raw.get("units", "px")
    if units not in SIZE_DEFAULTS:
        raise TaskParamsInvalid(f"units must be 'px' or 'deg', got {units!r}", "units")
    sizes = SIZE_DEFAULTS[units]
    out: dict[str, Any] = {
        "units": units,
        "viewing_distance_cm": _number(raw.get("viewing_distance_cm", DEFAULT_VIEWING_DISTANCE_CM),
                                       "viewing_distance_cm", lo=10, hi=300),
        "display_size": _size(raw.get("display_size", sizes["display_size"]), "display_size", units),
    }
    paint = _section(raw, "paint", {"brush_radii", "time_limit_s", "min_area", "max_area"})
    radii = paint.get("brush_radii", sizes["brush_radii"])
    if not isinstance(radii, list) or not 1 <= len(radii) <= 4:
        raise TaskParamsInvalid("paint.brush_radii must be a list of 1 to 4 sizes", "paint.brush_radii")
    p = {**PAINT_DEFAULTS, **paint}
    out["paint"] = {
        "brush_radii": [_size(r, f"paint.brush_radii[{i}]", units) for i, r in enumerate(radii)],
        "time_limit_s": _optional(p["time_limit_s"], "paint.time_limit_s", lo=1, hi=3600),
        "min_area": _number(p["min_area"], "paint.min_area", lo=0, hi=1),
        "max_area": _number(p["max_area"], "paint.max_area", lo=0, hi=1, lo_open=True),
    }
    if out["paint"]["min_area"] >= out["paint"]["max_area"]:
        raise TaskParamsInvalid("paint.min_area must be below paint.max_area", "paint.min_area")
    bubble = _section(raw, "bubble", {"variant", "blur_sigma", "bubble_radius", "time_limit_s", "min_clicks", "min_chars"})
    variant = bubble.get("variant", "free")
    if variant not in BUBBLE_VARIANTS:
        raise TaskParamsInvalid(f"bubble.variant must be one of {sorted(BUBBLE_VARIANTS)}, got {variant!r}", "bubble.variant")
    b = {**BUBBLE_VARIANTS[variant], **bubble}
    out["bubble"] = {
        "variant": variant,
        "blur_sigma": _size(b.get("blur_sigma", sizes["blur_sigma"]), "bubble.blur_sigma", units),
        "bubble_radius": _size(b.get("bubble_radius", sizes["radius"]), "bubble.bubble_radius", units),
        "time_limit_s": _optional(b["time_limit_s"], "bubble.time_limit_s", lo=1, hi=3600),
        "min_clicks": _number(b["min_clicks"], "bubble.min_clicks", lo=0, hi=1000, integer=True),
        "min_chars": _number(b["min_chars"], "bubble.min_chars", lo=0, hi=5000, integer=True),
    }
    mouse = _section(raw, "mouse", {"blur_sigma", "window_radius", "viewing_s", "sample_interval_ms", "min_samples"})
    m = {**MOUSE_DEFAULTS, **mouse}
    out["mouse"] = {
        "blur_sigma": _size(m.get("blur_sigma", sizes["blur_sigma"]), "mouse.blur_sigma", units),
        "window_radius": _size(m.get("window_radius", sizes["radius"]), "mouse.window_radius", units),
        "viewing_s": _number(m["viewing_s"], "mouse.viewing_s", lo=1, hi=600),
        "sample_interval_ms": _number(m["sample_interval_ms"], "mouse.sample_interval_ms", lo=4, hi=1000),
        "min_samples": _number(m["min_samples"], "mouse.min_samples", lo=0, hi=100_000, integer=True),
    }
    catch = _section(raw, "catch", set(CATCH_DEFAULTS))
    c = {**CATCH_DEFAULTS, **catch}
    if not isinstance(c["failed_code"], str) or len(c["failed_code"]) > 64:
        raise TaskParamsInvalid("catch.failed_code must be a string of at most 64 characters", "catch.failed_code")
    out["catch"] = {
        "iou_threshold": _number(c["iou_threshold"], "catch.iou_threshold", lo=0, hi=1),
        "point_fraction": _number(c["point_fraction"], "catch.point_fraction", lo=0, hi=1),
        "point_tolerance_px": _number(c["point_tolerance_px"], "catch.point_tolerance_px", lo=0, hi=1000),
        "pass_fraction": _number(c["pass_fraction"], "catch.pass_fraction", lo=0, hi=1),
        "per_participant": _optional(c["per_participant"], "catch.per_participant", lo=0, hi=1000, integer=True),
        "failed_code": c["failed_code"].strip(),
    }
    completion = _section(raw, "completion", set(COMPLETION_DEFAULTS))
    delay = {**COMPLETION_DEFAULTS, **completion}["redirect_delay_s"]
    out["completion"] = {"redirect_delay_s": _optional(delay, "completion.redirect_delay_s", lo=0, hi=60)}
    return out


def task_params_defaults(units: str = "px") -> dict:
    """The resolved parameters of a study that set nothing (for documentation and tests)."""
    return copy.deepcopy(task_params_resolve({"units": units}))


def px_per_degree(px_per_cm: float, viewing_distance_cm: float) -> float:
    """CSS px per degree of visual angle at the centre of gaze: px/cm * 2 D tan(0.5 deg)."""
    return px_per_cm * 2 * viewing_distance_cm * math.tan(math.radians(0.5))


def degrees_to_css_px(degrees: float, px_per_cm: float, viewing_distance_cm: float) -> float:
    """A size of `degrees` visual angle, centred on the line of sight, in CSS px: px/cm * 2 D tan(deg/2)."""
    return px_per_cm * 2 * viewing_distance_cm * math.tan(math.radians(degrees) / 2)


def trial_geometry(resolved: dict, kind: str, width: int, height: int, *, px_per_cm: float | None = None) -> dict:
    """What one trial of `kind` on a width x height stimulus shows.

    Returns {"display": {"width", "height"} (CSS px, the image's nominal on-screen size),
    "stim_px_per_css_px": float, "params": {...}} where params sizes are stimulus px and times ms.
    Degree studies need the participant's `px_per_cm` (from the calibration); raises ValueError without.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}")
    if resolved["units"] == "deg":
        if not px_per_cm:
            raise ValueError("a study with sizes in degrees needs the participant's screen calibration")
        distance = resolved["viewing_distance_cm"]

        def css(value: float) -> float:
            return degrees_to_css_px(value, px_per_cm, distance)
    else:
        def css(value: float) -> float:
            return value

    display_long = css(resolved["display_size"])
    stim_per_css = max(width, height) / display_long

    def stim(value: float) -> float:
        return round(css(value) * stim_per_css, 3)

    def ms(seconds: float | None) -> int | None:
        return None if seconds is None else int(round(seconds * 1000))

    if kind == "paint":
        p = resolved["paint"]
        params = {"brush_radii": [stim(r) for r in p["brush_radii"]], "time_limit_ms": ms(p["time_limit_s"]),
                  "min_area": p["min_area"], "max_area": p["max_area"]}
    elif kind == "bubble":
        b = resolved["bubble"]
        params = {"variant": b["variant"], "blur_sigma": stim(b["blur_sigma"]), "bubble_radius": stim(b["bubble_radius"]),
                  "viewing_ms": ms(b["time_limit_s"]), "min_clicks": b["min_clicks"], "min_chars": b["min_chars"]}
    else:
        m = resolved["mouse"]
        params = {"blur_sigma": stim(m["blur_sigma"]), "window_radius": stim(m["window_radius"]),
                  "viewing_ms": ms(m["viewing_s"]), "sample_interval_ms": m["sample_interval_ms"],
                  "min_samples": m["min_samples"]}
    return {
        "display": {"width": round(width / stim_per_css, 2), "height": round(height / stim_per_css, 2)},
        "stim_px_per_css_px": stim_per_css,
        "params": params,
    }
