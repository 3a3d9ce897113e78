"""Task parameters: defaults as documented, strict validation naming the field, and the geometry
of one trial in px and in degrees of visual angle."""
import math

import pytest

from annotations.task_params import (
    TaskParamsInvalid,
    degrees_to_css_px,
    px_per_degree,
    task_params_defaults,
    task_params_resolve,
    trial_geometry,
)


def test_defaults_are_the_documented_ones():
    d = task_params_defaults()
    assert d["display_size"] == 500 and d["units"] == "px" and d["viewing_distance_cm"] == 57
    assert d["paint"] == {"brush_radii": [6.0, 14.0, 28.0], "time_limit_s": None, "min_area": 0.005, "max_area": 0.9}
    assert d["bubble"] == {"variant": "free", "blur_sigma": 30.0, "bubble_radius": 30.0, "time_limit_s": 10.0,
                           "min_clicks": 2, "min_chars": 0}
    assert d["mouse"] == {"blur_sigma": 30.0, "window_radius": 30.0, "viewing_s": 5.0, "sample_interval_ms": 10.0,
                          "min_samples": 20}
    assert d["catch"]["iou_threshold"] == 0.55 and d["catch"]["pass_fraction"] == 0.95
    described = task_params_resolve({"bubble": {"variant": "description"}})["bubble"]
    assert (described["time_limit_s"], described["min_clicks"], described["min_chars"]) == (None, 10, 150)


@pytest.mark.parametrize(
    "raw,field",
    [
        ({"colour": "red"}, "colour"),
        ({"units": "cm"}, "units"),
        ({"display_size": 0}, "display_size"),
        ({"paint": {"brush_radii": []}}, "paint.brush_radii"),
        ({"paint": {"brush_radii": [5, -1]}}, "paint.brush_radii[1]"),
        ({"paint": {"min_area": 0.5, "max_area": 0.4}}, "paint.min_area"),
        ({"paint": {"size": 3}}, "paint.size"),
        ({"bubble": {"variant": "maze"}}, "bubble.variant"),
        ({"bubble": {"blur_sigma": float("nan")}}, "bubble.blur_sigma"),
        ({"bubble": {"min_clicks": 2.5}}, "bubble.min_clicks"),
        ({"mouse": {"viewing_s": 0}}, "mouse.viewing_s"),
        ({"catch": {"iou_threshold": 1.5}}, "catch.iou_threshold"),
        ({"catch": {"failed_code": 7}}, "catch.failed_code"),
        ({"completion": {"redirect_delay_s": -1}}, "completion.redirect_delay_s"),
        ("paint", "task_params"),
    ],
)
def test_bad_parameters_name_the_field(raw, field):
    with pytest.raises(TaskParamsInvalid) as info:
        task_params_resolve(raw)
    assert info.value.field == field


def test_pixel_geometry_scales_sizes_with_the_image():
    resolved = task_params_resolve({})
    g = trial_geometry(resolved, "bubble", 1000, 600)  # shown at 500 x 300: 2 stimulus px per CSS px
    assert g["display"] == {"width": 500, "height": 300} and g["stim_px_per_css_px"] == 2
    assert g["params"]["blur_sigma"] == 60 and g["params"]["bubble_radius"] == 60 and g["params"]["viewing_ms"] == 10000
    g = trial_geometry(resolved, "paint", 300, 600)  # portrait: the long side is the height
    assert g["display"] == {"width": 250, "height": 500} and g["params"]["brush_radii"] == [7.2, 16.8, 33.6]
    g = trial_geometry(resolved, "mouse", 500, 400)
    assert g["params"] == {"blur_sigma": 30, "window_radius": 30, "viewing_ms": 5000, "sample_interval_ms": 10, "min_samples": 20}


def test_degree_geometry_uses_the_calibration():
    resolved = task_params_resolve({"units": "deg", "display_size": 12, "bubble": {"bubble_radius": 1, "blur_sigma": 1}})
    px_per_cm = 330 / 8.56  # a card measured 330 CSS px wide
    g = trial_geometry(resolved, "bubble", 600, 400, px_per_cm=px_per_cm)
    display_px = px_per_cm * 2 * 57 * math.tan(math.radians(6))
    assert g["display"]["width"] == pytest.approx(display_px, abs=0.01)
    # one degree at the display's scale, in stimulus px
    assert g["params"]["bubble_radius"] == pytest.approx(degrees_to_css_px(1, px_per_cm, 57) * 600 / display_px, abs=0.001)
    assert px_per_degree(px_per_cm, 57) == pytest.approx(degrees_to_css_px(1, px_per_cm, 57), rel=1e-4)
    with pytest.raises(ValueError, match="calibration"):
        trial_geometry(resolved, "bubble", 600, 400)


def test_the_participant_side_pure_cores_import_no_django():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import annotations.task_params, annotations.regions, annotations.practice, annotations.payloads; "
            "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; assert not bad, bad")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
