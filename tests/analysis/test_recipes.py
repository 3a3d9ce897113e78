import numpy as np
import pytest

from analysis.recipes import (
    RecipeInvalid,
    fixation_counts,
    participant_map,
    recipe_clean,
    recipe_default,
    sigma_px,
)
from annotations.rasterize import points_density


def _bubble(clicks, display_width=500):
    return {"display": {"width": display_width, "height": 400}, "pointer_types": ["mouse"], "clicks": clicks}


def test_defaults_follow_the_reference():
    assert recipe_default("paint") == {"kind": "paint_mask", "version": 1}
    assert recipe_default("bubble")["sigma_display_px"] == 25.0 and recipe_default("bubble")["points"] == "clicks"
    assert recipe_default("mouse")["sigma_display_px"] == 19.0 and recipe_default("mouse")["points"] == "samples"
    with pytest.raises(RecipeInvalid):
        recipe_default("eyetracking")


def test_sigma_converts_screen_pixels_with_the_recorded_display_scale():
    recipe = recipe_default("bubble")
    assert sigma_px(recipe, _bubble([], display_width=500), width=500) == 25.0
    # shown at half size (a phone): one screen pixel covers two stimulus pixels
    assert sigma_px(recipe, _bubble([], display_width=250), width=500) == 50.0
    assert sigma_px({"kind": "gaussian_points", "points": "clicks", "sigma_px": 12.0}, _bubble([], 250), width=500) == 12.0


def test_points_map_is_a_density_with_fixations():
    pmap = participant_map(_bubble([[100.5, 50.5, 10], [100.7, 50.2, 20], [300, 200, 30]], 250), recipe_default("bubble"), height=400, width=500)
    assert pmap.sigma_px == 50.0
    assert pmap.density.sum() == pytest.approx(1.0)
    assert np.array_equal(pmap.density, points_density([[100.5, 50.5], [100.7, 50.2], [300, 200]], 400, 500, 50.0))
    assert pmap.fixations.dtype == np.int32 and pmap.fixations[50, 100] == 2 and pmap.fixations[200, 300] == 1
    assert pmap.fixations.sum() == 3


def test_no_points_gives_an_empty_map():
    pmap = participant_map(_bubble([]), recipe_default("bubble"), height=40, width=50)
    assert pmap.density.sum() == 0 and pmap.fixations.sum() == 0


def test_paint_map_is_the_binary_mask():
    payload = {"display": {"width": 50, "height": 40}, "strokes": [{"radius": 5, "erase": False, "points": [[20, 20, 0]]}]}
    pmap = participant_map(payload, recipe_default("paint"), height=40, width=50)
    assert pmap.fixations is None and pmap.sigma_px is None
    assert set(np.unique(pmap.density)) == {0.0, 1.0} and pmap.density[20, 20] == 1.0


def test_fixation_counts_drop_points_outside():
    counts = fixation_counts([[1.2, 2.7], [-1, 3], [10, 10], [9.99, 0], [1.9, 2.1]], 10, 10)
    assert counts[2, 1] == 2 and counts[0, 9] == 1 and counts.sum() == 3


@pytest.mark.parametrize(
    "kind,recipe,message",
    [
        ("paint", {"kind": "gaussian_points"}, "paint_mask"),
        ("bubble", {"kind": "gaussian_points"}, "exactly one"),
        ("bubble", {"kind": "gaussian_points", "sigma_px": 3, "sigma_display_px": 4}, "exactly one"),
        ("mouse", {"kind": "gaussian_points", "sigma_px": -2}, "between"),
        ("mouse", {"kind": "gaussian_points", "sigma_px": float("nan")}, "between"),
        ("bubble", {"kind": "paint_mask"}, "gaussian_points"),
    ],
)
def test_bad_recipes_are_refused_with_the_reason(kind, recipe, message):
    with pytest.raises(RecipeInvalid, match=message):
        recipe_clean(kind, recipe)


def test_clean_recipe_is_normalised():
    assert recipe_clean("mouse", {"kind": "gaussian_points", "sigma_px": 10}) == {
        "kind": "gaussian_points", "points": "samples", "sigma_px": 10.0, "version": 1
    }
