import numpy as np

from analysis.rasterize import fixation_map, paint_mask, points_density


def test_single_point_paints_a_disc_of_the_radius():
    mask = paint_mask([{"radius": 10, "erase": False, "points": [[50, 40, 0]]}], 100, 120)
    rows, cols = np.nonzero(mask)
    centres = np.hypot(cols + 0.5 - 50, rows + 0.5 - 40)
    assert centres.max() <= 10
    assert mask.sum() == (np.hypot(*np.meshgrid(np.arange(120) + 0.5 - 50, np.arange(100) + 0.5 - 40)) <= 10).sum()
    assert abs(mask.sum() - np.pi * 100) < 0.05 * np.pi * 100


def test_segment_paints_a_capsule_and_nothing_else():
    mask = paint_mask([{"radius": 5, "erase": False, "points": [[10, 50, 0], [90, 50, 10]]}], 100, 100)
    assert mask[50, 10:90].all()
    assert not mask[:44, :].any() and not mask[56:, :].any()
    assert mask[50, 5] and not mask[50, 3]  # round cap reaches x = 10 - 5


def test_erase_stroke_clears_and_order_matters():
    paint = {"radius": 20, "erase": False, "points": [[50, 50, 0]]}
    erase = {"radius": 10, "erase": True, "points": [[50, 50, 5]]}
    mask = paint_mask([paint, erase], 100, 100)
    assert not mask[50, 50] and mask[50, 35]
    assert paint_mask([erase, paint], 100, 100)[50, 50]


def test_strokes_outside_touch_only_edge_pixels():
    mask = paint_mask([{"radius": 3, "erase": False, "points": [[0, 0, 0]]}], 10, 10)
    assert mask[0, 0] and mask.sum() < 10


def test_points_density_sums_to_one_and_peaks_at_the_point():
    d = points_density([[30.5, 20.5], [30.5, 20.5]], 50, 60, sigma=5)
    assert np.isclose(d.sum(), 1.0)
    assert np.unravel_index(d.argmax(), d.shape) == (20, 30)
    # exact Gaussian shape
    assert np.isclose(d[20, 35] / d[20, 30], np.exp(-25 / 50))


def test_points_density_empty_is_zero():
    assert points_density([], 10, 10, 5).sum() == 0


def test_fixation_map_drops_outside_points():
    f = fixation_map([[1.2, 2.7], [-1, 3], [10, 10], [9.99, 0]], 10, 10)
    assert f[2, 1] and f[0, 9] and f.sum() == 2
