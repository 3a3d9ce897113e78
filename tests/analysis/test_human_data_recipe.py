"""The one fixation-to-map recipe: imported fixations (sigma in px or degrees, duration weighting)
next to bubble and mouse data, whose maps stay bit for bit what they were."""
import numpy as np
import pytest

from analysis.recipes import (
    CHUNK_POINTS,
    RecipeInvalid,
    gaussian_density,
    participant_map,
    recipe_clean,
    recipe_default,
)
from annotations.rasterize import points_density
from tests.analysis.human_data_fixtures import gaussian_naive

RNG = np.random.default_rng(4)


def _fixations(n, width=30, height=20, durations=True):
    xs, ys = RNG.random(n) * width, RNG.random(n) * height
    return [[float(x), float(y), 10.0 * i, float(RNG.integers(50, 500)) if durations else None]
            for i, (x, y) in enumerate(zip(xs, ys))]


def test_the_fixations_recipe_is_cleaned_and_has_no_default():
    assert recipe_clean("fixations", {"kind": "gaussian_points", "sigma_px": 20}) == {
        "kind": "gaussian_points", "points": "fixations", "sigma_px": 20.0, "weighting": "none", "version": 1}
    assert recipe_clean("fixations", {"kind": "gaussian_points", "sigma_deg": 1, "weighting": "duration"}) == {
        "kind": "gaussian_points", "points": "fixations", "sigma_deg": 1.0, "weighting": "duration", "version": 1}
    with pytest.raises(RecipeInvalid, match="no default recipe"):
        recipe_default("fixations")


@pytest.mark.parametrize("recipe,message", [
    ({"kind": "paint_mask", "sigma_px": 3}, "gaussian_points"),
    ({"kind": "gaussian_points"}, "exactly one"),
    ({"kind": "gaussian_points", "sigma_px": 3, "sigma_deg": 1}, "exactly one"),
    ({"kind": "gaussian_points", "sigma_deg": 0}, "between 0.01 and 30"),
    ({"kind": "gaussian_points", "sigma_deg": True}, "between"),
    ({"kind": "gaussian_points", "sigma_px": 3, "weighting": "fixation_count"}, "weighting must be one of"),
])
def test_bad_fixation_recipes_are_refused(recipe, message):
    with pytest.raises(RecipeInvalid, match=message):
        recipe_clean("fixations", recipe)


def test_bubble_and_mouse_recipes_are_unchanged():
    """What a study stored before still compares equal (a changed recipe would mark maps stale)."""
    assert recipe_default("bubble") == {"kind": "gaussian_points", "points": "clicks", "sigma_display_px": 25.0,
                                        "version": 1}
    assert recipe_clean("mouse", {"kind": "gaussian_points", "sigma_px": 10, "weighting": "duration"}) == {
        "kind": "gaussian_points", "points": "samples", "sigma_px": 10.0, "version": 1}
    with pytest.raises(RecipeInvalid, match="sigma_px .stimulus px. or sigma_display_px"):
        recipe_clean("bubble", {"kind": "gaussian_points", "sigma_deg": 1})


def test_bubble_and_mouse_maps_are_bit_identical_to_points_density():
    clicks = [[x, y, t] for x, y, t, _ in _fixations(40, 50, 40)]
    payload = {"display": {"width": 250, "height": 200}, "clicks": clicks, "samples": clicks}
    for kind in ("bubble", "mouse"):
        pmap = participant_map(payload, recipe_default(kind), height=40, width=50)
        expected_sigma = {"bubble": 25.0, "mouse": 19.0}[kind] * 50 / 250
        assert pmap.sigma_px == expected_sigma
        assert np.array_equal(pmap.density, points_density(clicks, 40, 50, expected_sigma))


def test_equal_weights_give_points_density_bits_up_to_a_chunk_and_the_same_map_beyond():
    few = _fixations(CHUNK_POINTS)
    assert np.array_equal(gaussian_density(few, 20, 30, 3.0), points_density(few, 20, 30, 3.0))
    many = _fixations(2 * CHUNK_POINTS + 5)
    np.testing.assert_allclose(gaussian_density(many, 20, 30, 3.0), points_density(many, 20, 30, 3.0), rtol=1e-12)
    assert gaussian_density([], 20, 30, 3.0).sum() == 0


def test_imported_fixations_map_by_the_recipe_with_and_without_duration_weighting():
    fixations = _fixations(6)
    payload = {"fixations": fixations, "px_per_degree": 12.5}
    points = [(x, y) for x, y, *_ in fixations]
    plain = participant_map(payload, {"kind": "gaussian_points", "points": "fixations", "sigma_deg": 0.3}, height=20, width=30)
    assert plain.sigma_px == pytest.approx(0.3 * 12.5)
    np.testing.assert_allclose(plain.density, gaussian_naive(points, [1] * 6, 30, 20, 0.3 * 12.5), rtol=1e-12)
    assert plain.fixations.sum() == 6
    weighted = participant_map(payload, recipe_clean("fixations", {"kind": "gaussian_points", "sigma_px": 2.0,
                                                                   "weighting": "duration"}), height=20, width=30)
    durations = [f[3] for f in fixations]
    np.testing.assert_allclose(weighted.density, gaussian_naive(points, durations, 30, 20, 2.0), rtol=1e-12)
    assert weighted.density.sum() == pytest.approx(1.0)


def test_degrees_without_geometry_and_weighting_without_durations_are_refused():
    recipe = recipe_clean("fixations", {"kind": "gaussian_points", "sigma_deg": 1.0})
    with pytest.raises(RecipeInvalid, match="needs the viewing geometry"):
        participant_map({"fixations": _fixations(3), "px_per_degree": None}, recipe, height=20, width=30)
    recipe = recipe_clean("fixations", {"kind": "gaussian_points", "sigma_px": 2.0, "weighting": "duration"})
    with pytest.raises(RecipeInvalid, match="needs every fixation's duration"):
        participant_map({"fixations": _fixations(3, durations=False)}, recipe, height=20, width=30)
