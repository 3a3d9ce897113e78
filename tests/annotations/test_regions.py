"""Known regions: masks at pixel centres (checked against matplotlib's point-in-polygon), IoU, points."""
import numpy as np
import pytest
from matplotlib.path import Path

from annotations.regions import RegionInvalid, mask_iou, points_inside_fraction, region_clean, region_mask


def test_box_mask_takes_pixels_whose_centre_is_inside():
    mask = region_mask({"boxes": [[1.0, 2.0, 3.6, 4.5]]}, 6, 6)
    # centres x in {1.5, 2.5, 3.5} (< 3.6), y in {2.5, 3.5} (< 4.5)
    expected = np.zeros((6, 6), bool)
    expected[2:4, 1:4] = True
    assert (mask == expected).all()


@pytest.mark.parametrize("seed", range(5))
def test_polygon_mask_matches_matplotlib_at_pixel_centres(seed):
    rng = np.random.default_rng(seed)
    # a star-shaped polygon with float vertices (no centre lies exactly on an edge)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = rng.uniform(10, 30, 9)
    vertices = np.stack([40 + radii * np.cos(angles), 32 + radii * np.sin(angles)], axis=1) + 0.1234
    mask = region_mask({"polygons": [vertices.tolist()]}, 64, 80)
    ys, xs = np.mgrid[0:64, 0:80] + 0.5
    reference = Path(vertices).contains_points(np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(64, 80)
    assert mask.sum() > 200 and (mask == reference).all()


def test_region_clean_refuses_bad_regions_naming_the_field():
    assert region_clean({"boxes": [[0, 0, 10, 10]]}, width=20, height=20) == {"boxes": [[0.0, 0.0, 10.0, 10.0]], "polygons": []}
    for raw, field in [
        ({"boxes": [[0, 0, 30, 10]]}, "known_region.boxes[0].x1"),
        ({"boxes": [[5, 5, 2, 10]]}, "known_region.boxes[0]"),
        ({"boxes": [[0, 0, float("nan"), 10]]}, "known_region.boxes[0].x1"),
        ({"polygons": [[[0, 0], [5, 5]]]}, "known_region.polygons[0]"),
        ({"polygons": [[[0, 0], [5, 5], [5, -1]]]}, "known_region.polygons[0][2].y"),
        ({"circles": []}, "known_region"),
        ({"boxes": [[0, 0, 0.2, 0.2]]}, "known_region"),  # covers no pixel centre
    ]:
        with pytest.raises(RegionInvalid) as info:
            region_clean(raw, width=20, height=20)
        assert info.value.field == field, raw


def test_iou_and_points_inside():
    a = np.zeros((10, 10), bool)
    a[0:5, 0:4] = True
    b = np.zeros((10, 10), bool)
    b[0:5, 2:6] = True
    assert mask_iou(a, b) == pytest.approx(10 / 30)
    assert mask_iou(a, a) == 1.0 and mask_iou(np.zeros_like(a), np.zeros_like(a)) == 0.0
    points = [[1.5, 1.5, 0], [3.9, 4.9, 5], [4.0, 1.0, 9], [9.5, 9.5, 10], [10, 10, 12]]
    assert points_inside_fraction(points, a) == pytest.approx(2 / 5)
    # within 1 px (centre to centre) of a region pixel: (4.0, 1.0) is in pixel (1, 4), next to (1, 3)
    assert points_inside_fraction(points, a, tolerance=1.0) == pytest.approx(3 / 5)
    assert points_inside_fraction([], a) == 0.0
