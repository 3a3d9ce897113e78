import copy
import math

import pytest

from annotations.payloads import (
    MAX_PAINT_WORK,
    MAX_POINTS,
    MAX_STROKES,
    TIME_GRACE_MS,
    PayloadInvalid,
    PayloadTooLarge,
    bubble_payload_clean,
    mouse_payload_clean,
    paint_payload_clean,
    payload_clean,
    radius_max,
)
from annotations.rasterize import paint_work

DISPLAY = {"width": 500, "height": 400, "dpr": 2, "viewport": [1280, 800]}
GOOD = {"display": DISPLAY, "pointer_types": ["mouse"],
        "strokes": [{"radius": 5, "erase": False, "points": [[1, 2, 0], [3, 4, 16]]}]}
BUBBLE = {"display": DISPLAY, "pointer_types": ["touch"], "user_agent": "UA/1.0",
          "clicks": [[10, 20, 500], [99.5, 79.5, 1500]], "bubble_radius": 27.1, "blur_sigma": 27.1,
          "viewing_ms": 10000, "variant": "free"}
MOUSE = {"display": DISPLAY, "pointer_types": ["mouse"], "samples": [[1, 1, 0], [2, 2, 10], [3, 3, 20]],
         "window_radius": 30, "blur_sigma": 30, "viewing_ms": 5000, "sample_interval_ms": 10}


def test_good_payload_is_kept_losslessly():
    cleaned = paint_payload_clean(GOOD, width=100, height=80)
    assert cleaned["strokes"][0]["points"] == [[1.0, 2.0, 0.0], [3.0, 4.0, 16.0]]
    assert cleaned["display"] == {"width": 500.0, "height": 400.0, "dpr": 2.0, "viewport": [1280.0, 800.0]}


def test_bubble_and_mouse_payloads_are_kept_and_unknown_keys_dropped():
    cleaned = bubble_payload_clean({**BUBBLE, "secret": "x"}, width=100, height=80, rules={"min_clicks": 2, "viewing_ms": 10000})
    assert cleaned["clicks"] == [[10.0, 20.0, 500.0], [99.5, 79.5, 1500.0]]
    assert cleaned["user_agent"] == "UA/1.0" and cleaned["pointer_types"] == ["touch"] and "secret" not in cleaned
    assert (cleaned["bubble_radius"], cleaned["blur_sigma"], cleaned["variant"]) == (27.1, 27.1, "free")
    cleaned = mouse_payload_clean(MOUSE, width=100, height=80, rules={"min_samples": 3})
    assert cleaned["samples"][2] == [3.0, 3.0, 20.0] and cleaned["sample_interval_ms"] == 10.0
    assert payload_clean("mouse", MOUSE, width=100, height=80) == cleaned


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda p: p["strokes"][0]["points"].append([101, 2, 20]), "strokes[0].points[2].x"),
        (lambda p: p["strokes"][0]["points"].append([1, -1, 20]), "strokes[0].points[2].y"),
        (lambda p: p["strokes"][0]["points"].append([1, 1, -5]), "strokes[0].points[2].t"),
        (lambda p: p["strokes"][0]["points"].append([math.nan, 1, 5]), "strokes[0].points[2].x"),
        (lambda p: p["strokes"][0]["points"].append([1, math.inf, 5]), "strokes[0].points[2].y"),
        (lambda p: p["strokes"][0]["points"].append([1, 1]), "strokes[0].points[2]"),
        (lambda p: p["strokes"][0]["points"].append(["1", 1, 1]), "strokes[0].points[2].x"),
        (lambda p: p["strokes"][0]["points"].append([True, 1, 1]), "strokes[0].points[2].x"),
        (lambda p: p["strokes"][0].update(radius=0), "strokes[0].radius"),
        (lambda p: p["strokes"][0].update(erase="yes"), "strokes[0].erase"),
        (lambda p: p["strokes"][0].update(points=[]), "strokes[0].points"),
        (lambda p: p.update(strokes="x"), "strokes"),
        (lambda p: p.update(display=None), "display"),
        (lambda p: p.update(display={"width": 0, "height": 5}), "display.width"),
        (lambda p: p.update(display={**DISPLAY, "dpr": math.nan}), "display.dpr"),
        (lambda p: p.update(pointer_types="mouse"), "pointer_types"),
        (lambda p: p.update(user_agent=5), "user_agent"),
    ],
)
def test_bad_paint_payloads_name_the_field(mutate, field):
    payload = copy.deepcopy(GOOD)
    mutate(payload)
    with pytest.raises(PayloadInvalid) as info:
        paint_payload_clean(payload, width=100, height=80)
    assert info.value.field == field and info.value.status == 400


@pytest.mark.parametrize(
    "kind,base,mutate,field",
    [
        ("bubble", BUBBLE, lambda p: p["clicks"].append([100.5, 1, 1]), "clicks[2].x"),
        ("bubble", BUBBLE, lambda p: p["clicks"].append([1, 1, -1]), "clicks[2].t"),
        ("bubble", BUBBLE, lambda p: p["clicks"].append([1, math.nan, 1]), "clicks[2].y"),
        ("bubble", BUBBLE, lambda p: p.update(clicks=None), "clicks"),
        ("bubble", BUBBLE, lambda p: p.update(bubble_radius=-3), "bubble_radius"),
        ("bubble", BUBBLE, lambda p: p.update(blur_sigma=math.inf), "blur_sigma"),
        ("bubble", BUBBLE, lambda p: p.update(variant="maze"), "variant"),
        ("bubble", BUBBLE, lambda p: p.update(description=["x"]), "description"),
        ("bubble", BUBBLE, lambda p: p.update(viewing_ms=-1), "viewing_ms"),
        ("mouse", MOUSE, lambda p: p["samples"].append([1, 81, 30]), "samples[3].y"),
        ("mouse", MOUSE, lambda p: p["samples"].append([1, 1, math.nan]), "samples[3].t"),
        ("mouse", MOUSE, lambda p: p.update(window_radius=None), "window_radius"),
        ("mouse", MOUSE, lambda p: p.update(sample_interval_ms=0), "sample_interval_ms"),
        ("mouse", MOUSE, lambda p: p.update(samples={"x": 1}), "samples"),
    ],
)
def test_bad_bubble_and_mouse_payloads_name_the_field(kind, base, mutate, field):
    payload = copy.deepcopy(base)
    mutate(payload)
    with pytest.raises(PayloadInvalid) as info:
        payload_clean(kind, payload, width=100, height=80)
    assert info.value.field == field


def test_task_rules_are_enforced():
    with pytest.raises(PayloadInvalid, match="click at least 3 times") as info:
        bubble_payload_clean(BUBBLE, width=100, height=80, rules={"min_clicks": 3})
    assert info.value.field == "clicks"
    described = {**BUBBLE, "variant": "description", "description": "a cat " * 20}
    with pytest.raises(PayloadInvalid, match="at least 150") as info:
        bubble_payload_clean(described, width=100, height=80, rules={"min_chars": 150})
    assert info.value.field == "description"
    assert bubble_payload_clean({**described, "description": "a cat " * 30}, width=100, height=80, rules={"min_chars": 150})
    late = copy.deepcopy(BUBBLE)
    late["clicks"].append([5, 5, 10000 + TIME_GRACE_MS + 1])
    with pytest.raises(PayloadInvalid, match="after the viewing time") as info:
        bubble_payload_clean(late, width=100, height=80, rules={"viewing_ms": 10000})
    assert info.value.field == "clicks[2].t"
    with pytest.raises(PayloadInvalid, match="keep the pointer on the image") as info:
        mouse_payload_clean(MOUSE, width=100, height=80, rules={"min_samples": 20})
    painted_late = copy.deepcopy(GOOD)
    painted_late["strokes"][0]["points"].append([5, 5, 5000 + TIME_GRACE_MS + 1])
    with pytest.raises(PayloadInvalid, match="time limit") as info:
        paint_payload_clean(painted_late, width=100, height=80, rules={"time_limit_ms": 5000})
    assert info.value.field == "strokes[0].points[2].t"


def test_size_limits_are_413_naming_the_field():
    with pytest.raises(PayloadTooLarge) as info:
        paint_payload_clean({**GOOD, "strokes": [GOOD["strokes"][0]] * (MAX_STROKES + 1)}, width=100, height=80)
    assert info.value.field == "strokes" and info.value.status == 413
    with pytest.raises(PayloadTooLarge) as info:
        mouse_payload_clean({**MOUSE, "samples": [[1, 1, 1]] * (MAX_POINTS + 1)}, width=100, height=80)
    assert info.value.field == "samples"
    many = [{"radius": 2, "erase": False, "points": [[1, 1, 1]] * 1000} for _ in range(MAX_POINTS // 1000 + 1)]
    with pytest.raises(PayloadTooLarge, match="points in all"):
        paint_payload_clean({**GOOD, "strokes": many}, width=100, height=80)
    with pytest.raises(PayloadTooLarge) as info:
        bubble_payload_clean({**BUBBLE, "description": "x" * 10_001}, width=100, height=80)
    assert info.value.field == "description"


def test_points_on_the_far_edge_are_inside():
    edge = {**BUBBLE, "clicks": [[100, 80, 0], [0, 0, 0]]}
    assert bubble_payload_clean(edge, width=100, height=80)["clicks"][0] == [100.0, 80.0, 0.0]


def _one_stroke(n, radius, width=500, height=375, seed=1):
    """n random points all over the image in one stroke: the shape of the paint memory bomb."""
    import numpy as np

    rng = np.random.default_rng(seed)
    points = [[round(float(x), 2), round(float(y), 2), i] for i, (x, y) in
              enumerate(zip(rng.uniform(0, width, n), rng.uniform(0, height, n)))]
    return {**GOOD, "strokes": [{"radius": radius, "erase": False, "points": points}]}


def test_a_brush_larger_than_a_quarter_of_the_image_or_the_studys_brushes_is_refused():
    assert radius_max(500, 375) == 125 and radius_max(500, 375, {"brush_radii": [6, 14, 28]}) == 125
    assert radius_max(500, 375, {"brush_radii": [40, 200]}) == pytest.approx(200.01)
    with pytest.raises(PayloadInvalid, match="larger than any brush") as info:
        paint_payload_clean(_one_stroke(3, 500.0), width=500, height=375)
    assert info.value.field == "strokes[0].radius" and info.value.status == 400
    assert paint_payload_clean(_one_stroke(3, 125.0), width=500, height=375)["strokes"][0]["radius"] == 125
    big_brush = paint_payload_clean(_one_stroke(3, 200.0), width=500, height=375, rules={"brush_radii": [40, 200]})
    assert big_brush["strokes"][0]["radius"] == 200


@pytest.mark.parametrize("n", [15_000, 50_000])
def test_strokes_too_costly_to_rasterise_are_413_before_any_rasterising(n):
    """The memory bomb (one stroke all over the image) with the widest brush accepted: refused from
    its points alone, so the cost is the validation's (linear in the points), not the rasteriser's."""
    payload = _one_stroke(n, 125.0)
    assert paint_work(payload["strokes"], 375, 500) > MAX_PAINT_WORK
    with pytest.raises(PayloadTooLarge, match="too long or too wide to check") as info:
        paint_payload_clean(payload, width=500, height=375)
    assert info.value.field == "strokes" and info.value.status == 413


def test_the_largest_realistic_sessions_fit_the_work_limit():
    """MAX_POINTS points of strokes drawn with the largest default brush (28 px on a 500 px image),
    ~2 px apart as the page records them, fit; so does a small image's session of many taps."""
    import numpy as np

    rng = np.random.default_rng(2)
    strokes = []
    for _ in range(50):
        xy = np.cumsum(rng.normal(0, 1.4, (MAX_POINTS // 50, 2)), axis=0) + [250, 187]
        xy = np.clip(xy, 0, [500, 375])
        strokes.append({"radius": 28.0, "erase": False, "points": [[float(x), float(y), 0] for x, y in xy]})
    assert paint_work(strokes, 375, 500) < 0.8 * MAX_PAINT_WORK
    assert len(paint_payload_clean({**GOOD, "strokes": strokes}, width=500, height=375)["strokes"]) == 50
    taps = [{"radius": 3.6, "erase": False, "points": [[30, 20, i]]} for i in range(2000)]
    assert paint_work(taps, 48, 64) < 0.01 * MAX_PAINT_WORK
