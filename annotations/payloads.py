"""Validating a participant's raw response payload (pure Python and numpy, no Django). Format:
docs/payloads.md.

Everything is in stimulus pixel coordinates (x right, y down, 0..width and 0..height) and
milliseconds since the trial was shown. The cleaned payload is rebuilt from validated values only
(unknown keys are dropped), so what is stored is exactly what was checked.

Two kinds of failure: `PayloadInvalid` (a malformed or rule-breaking payload: 400) and its subclass
`PayloadTooLarge` (over a documented size limit: 413). Both name the field.
Limits: a request body of at most MAX_BODY_BYTES, MAX_STROKES strokes, MAX_POINTS points in all
(stroke points, clicks or samples), descriptions of at most MAX_DESCRIPTION characters, and paint
strokes that cost at most MAX_PAINT_WORK to rasterise (`annotations.rasterize.paint_work`, counted from
the points before anything is rasterised), each of a radius no larger than `radius_max`.
"""
from __future__ import annotations

import math
from typing import Any

from .rasterize import paint_work

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_STROKES = 2000
MAX_POINTS = 50_000
MAX_DESCRIPTION = 10_000
# (segment, pixel row) pairs, `annotations.rasterize.paint_work`: about 1 s of one CPU core at most
# (docs/payloads.md has the measurements). MAX_POINTS points painted with the largest default brush
# on a 500 px image cost ~3,000,000; a typical trial well under 100,000.
MAX_PAINT_WORK = 4_000_000
# A brush may be at most this fraction of the image's longer side, or the study's largest brush.
MAX_RADIUS_FRACTION = 0.25
MAX_TIME_MS = 24 * 3600 * 1000
# Timers in a browser fire late; events up to this long after the time limit are still accepted.
TIME_GRACE_MS = 1500
BUBBLE_VARIANTS = ("free", "description")


class PayloadInvalid(ValueError):
    status = 400

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


class PayloadTooLarge(PayloadInvalid):
    status = 413


def _number(value: Any, field: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadInvalid(f"{field} must be a number, got {value!r}", field)
    value = float(value)
    if not math.isfinite(value):
        raise PayloadInvalid(f"{field} must be finite, got {value}", field)
    if lo is not None and value < lo:
        raise PayloadInvalid(f"{field} = {value} is below {lo}", field)
    if hi is not None and value > hi:
        raise PayloadInvalid(f"{field} = {value} is above {hi}", field)
    return value


def _display(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise PayloadInvalid("display must be an object with width and height", "display")
    display = {
        "width": _number(raw.get("width"), "display.width", lo=1, hi=20000),
        "height": _number(raw.get("height"), "display.height", lo=1, hi=20000),
    }
    if raw.get("dpr") is not None:
        display["dpr"] = _number(raw["dpr"], "display.dpr", lo=0.1, hi=16)
    viewport = raw.get("viewport")
    if viewport is not None:
        if not isinstance(viewport, list) or len(viewport) != 2:
            raise PayloadInvalid("display.viewport must be [width, height]", "display.viewport")
        display["viewport"] = [_number(v, "display.viewport", lo=0, hi=100000) for v in viewport]
    return display


def _point(raw: Any, field: str, width: int, height: int) -> list[float]:
    if not isinstance(raw, (list, tuple)) or len(raw) != 3:
        raise PayloadInvalid(f"{field} must be [x, y, t_ms]", field)
    x = _number(raw[0], f"{field}.x", lo=0, hi=width)
    y = _number(raw[1], f"{field}.y", lo=0, hi=height)
    t = _number(raw[2], f"{field}.t", lo=0, hi=MAX_TIME_MS)
    return [x, y, t]


def _points(raw: Any, field: str, width: int, height: int, budget: int = MAX_POINTS) -> list[list[float]]:
    if not isinstance(raw, list):
        raise PayloadInvalid(f"{field} must be a list of [x, y, t_ms]", field)
    if len(raw) > budget:
        raise PayloadTooLarge(f"{len(raw)} {field}; at most {MAX_POINTS} points are accepted", field)
    return [_point(p, f"{field}[{i}]", width, height) for i, p in enumerate(raw)]


def _object(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise PayloadInvalid("payload must be a JSON object", "payload")
    return payload


def _common(payload: dict) -> dict:
    pointer_types = payload.get("pointer_types", [])
    if not isinstance(pointer_types, list) or not all(isinstance(p, str) and len(p) < 20 for p in pointer_types):
        raise PayloadInvalid("pointer_types must be a list of short strings", "pointer_types")
    common = {"display": _display(payload.get("display")), "pointer_types": pointer_types[:10]}
    user_agent = payload.get("user_agent")
    if user_agent is not None:
        if not isinstance(user_agent, str):
            raise PayloadInvalid("user_agent must be a string", "user_agent")
        common["user_agent"] = user_agent[:400]
    return common


def _time_limit_check(points: list[list[float]], field: str, limit_ms: float | None, label: str) -> None:
    if limit_ms is None:
        return
    late = [i for i, p in enumerate(points) if p[2] > limit_ms + TIME_GRACE_MS]
    if late:
        raise PayloadInvalid(
            f"{field}[{late[0]}] was recorded at {points[late[0]][2]:.0f} ms, after the {label} of {limit_ms:.0f} ms",
            f"{field}[{late[0]}].t",
        )


def _optional_ms(payload: dict, field: str) -> float | None:
    value = payload.get(field)
    return None if value is None else _number(value, field, lo=0, hi=MAX_TIME_MS)


def radius_max(width: int, height: int, rules: dict | None = None) -> float:
    """The largest stroke radius accepted, stimulus px: a quarter of the image's longer side, or the
    study's largest brush (rules["brush_radii"], stimulus px) if that is larger; the page rounds a
    radius to 0.01 px, hence the 0.01 of slack."""
    brushes = (rules or {}).get("brush_radii") or [0.0]
    return max(MAX_RADIUS_FRACTION * max(width, height), max(brushes) + 0.01)


def paint_payload_clean(payload: Any, *, width: int, height: int, rules: dict | None = None) -> dict:
    """{"display", "pointer_types", ["user_agent"], "strokes": [{"radius", "erase", "points"}],
    "time_limit_ms"}. Rules: time_limit_ms (points after it are refused), brush_radii (with the
    image's size they set `radius_max`). Strokes whose rasterising would cost more than
    MAX_PAINT_WORK are refused (413) before any is rasterised. The painted-area rules need the
    rasterised mask and are checked by the service."""
    rules = rules or {}
    largest = radius_max(width, height, rules)
    strokes = _object(payload).get("strokes")
    if not isinstance(strokes, list):
        raise PayloadInvalid("strokes must be a list", "strokes")
    if len(strokes) > MAX_STROKES:
        raise PayloadTooLarge(f"{len(strokes)} strokes; at most {MAX_STROKES} are accepted", "strokes")
    cleaned, total_points = [], 0
    for i, stroke in enumerate(strokes):
        field = f"strokes[{i}]"
        if not isinstance(stroke, dict):
            raise PayloadInvalid(f"{field} must be an object", field)
        points = stroke.get("points")
        if not isinstance(points, list) or not points:
            raise PayloadInvalid(f"{field}.points must be a non-empty list", f"{field}.points")
        total_points += len(points)
        if total_points > MAX_POINTS:
            raise PayloadTooLarge(f"more than {MAX_POINTS} points in all", "strokes")
        erase = stroke.get("erase", False)
        if not isinstance(erase, bool):
            raise PayloadInvalid(f"{field}.erase must be true or false", f"{field}.erase")
        radius = _number(stroke.get("radius"), f"{field}.radius", lo=0.5)
        if radius > largest:
            raise PayloadInvalid(
                f"{field}.radius = {radius:g} px is larger than any brush of this trial (at most {largest:g} px: "
                "a quarter of the image's longer side, or the study's largest brush)", f"{field}.radius")
        clean_points = _points(points, f"{field}.points", width, height)
        _time_limit_check(clean_points, f"{field}.points", rules.get("time_limit_ms"), "time limit")
        cleaned.append({"radius": radius, "erase": erase, "points": clean_points})
    work = paint_work(cleaned, height, width)
    if work > MAX_PAINT_WORK:
        raise PayloadTooLarge(
            f"the strokes are too long or too wide to check: their cost is {work:,} (segment, pixel row) pairs, "
            f"the limit {MAX_PAINT_WORK:,}; paint with fewer or shorter strokes or a smaller brush", "strokes")
    return {**_common(payload), "strokes": cleaned, "time_limit_ms": _optional_ms(payload, "time_limit_ms")}


def bubble_payload_clean(payload: Any, *, width: int, height: int, rules: dict | None = None) -> dict:
    """{"display", "pointer_types", ["user_agent"], "clicks": [[x, y, t]], "bubble_radius", "blur_sigma",
    "viewing_ms", "variant", "description"}. Rules: min_clicks, min_chars (description), viewing_ms
    (clicks after it are refused)."""
    rules = rules or {}
    clicks = _points(_object(payload).get("clicks"), "clicks", width, height)
    variant = payload.get("variant", rules.get("variant", "free"))
    if variant not in BUBBLE_VARIANTS:
        raise PayloadInvalid(f"variant must be one of {list(BUBBLE_VARIANTS)}, got {variant!r}", "variant")
    description = payload.get("description", "")
    if not isinstance(description, str):
        raise PayloadInvalid("description must be a string", "description")
    if len(description) > MAX_DESCRIPTION:
        raise PayloadTooLarge(f"the description has {len(description)} characters; at most {MAX_DESCRIPTION}", "description")
    min_clicks = rules.get("min_clicks", 0)
    if len(clicks) < min_clicks:
        raise PayloadInvalid(f"{len(clicks)} clicks; click at least {min_clicks} times on the image", "clicks")
    min_chars = rules.get("min_chars", 0)
    if len(description.strip()) < min_chars:
        raise PayloadInvalid(
            f"the description has {len(description.strip())} characters; write at least {min_chars}", "description"
        )
    _time_limit_check(clicks, "clicks", rules.get("viewing_ms"), "viewing time")
    return {
        **_common(payload),
        "clicks": clicks,
        "bubble_radius": _number(payload.get("bubble_radius"), "bubble_radius", lo=0.5, hi=max(width, height)),
        "blur_sigma": _number(payload.get("blur_sigma"), "blur_sigma", lo=0, hi=max(width, height)),
        "viewing_ms": _optional_ms(payload, "viewing_ms"),
        "variant": variant,
        "description": description,
    }


def mouse_payload_clean(payload: Any, *, width: int, height: int, rules: dict | None = None) -> dict:
    """{"display", "pointer_types", ["user_agent"], "samples": [[x, y, t]], "window_radius", "blur_sigma",
    "viewing_ms", "sample_interval_ms"}. Rules: min_samples, viewing_ms (samples after it are refused)."""
    rules = rules or {}
    samples = _points(_object(payload).get("samples"), "samples", width, height)
    min_samples = rules.get("min_samples", 0)
    if len(samples) < min_samples:
        raise PayloadInvalid(
            f"{len(samples)} samples; keep the pointer on the image while it is shown (at least {min_samples} samples)",
            "samples",
        )
    _time_limit_check(samples, "samples", rules.get("viewing_ms"), "viewing time")
    interval = payload.get("sample_interval_ms")
    return {
        **_common(payload),
        "samples": samples,
        "window_radius": _number(payload.get("window_radius"), "window_radius", lo=0.5, hi=max(width, height)),
        "blur_sigma": _number(payload.get("blur_sigma"), "blur_sigma", lo=0, hi=max(width, height)),
        "viewing_ms": _optional_ms(payload, "viewing_ms"),
        "sample_interval_ms": None if interval is None else _number(interval, "sample_interval_ms", lo=1, hi=1000),
    }


CLEANERS = {"paint": paint_payload_clean, "bubble": bubble_payload_clean, "mouse": mouse_payload_clean}


def payload_clean(kind: str, payload: Any, *, width: int, height: int, rules: dict | None = None) -> dict:
    """The cleaned payload of a `kind` trial on a width x height stimulus; raises PayloadInvalid."""
    if kind not in CLEANERS:
        raise PayloadInvalid(f"task kind {kind!r} has no payload format", "task_kind")
    return CLEANERS[kind](payload, width=width, height=height, rules=rules)
