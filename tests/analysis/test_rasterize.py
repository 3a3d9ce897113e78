import tracemalloc

import numpy as np
import pytest

from annotations import rasterize
from annotations.rasterize import fixation_map, paint_mask, paint_work, points_density
from tests.analysis import rasterize_v1_ref


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


def _paint_mask_by_definition(strokes, height, width):
    """The definition, pixel by pixel: centre within r of any segment of the stroke; strokes in order."""
    mask = np.zeros((height, width), dtype=bool)
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    for stroke in strokes:
        r = float(stroke["radius"])
        pts = np.asarray([p[:2] for p in stroke["points"]], dtype=np.float64)
        segments = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
        cover = np.zeros_like(mask)
        for a, b in segments:
            d = b - a
            px, py = xs - a[0], ys - a[1]
            if d @ d > 0:
                t = np.clip((px * d[0] + py * d[1]) / (d @ d), 0, 1)
                px, py = px - t * d[0], py - t * d[1]
            cover |= px * px + py * py <= r * r
        mask[cover] = not stroke.get("erase", False)
    return mask


def test_paint_mask_equals_the_pixel_definition_on_random_strokes_including_ties():
    """Row runs solved analytically must give the definition's pixels exactly: random strokes, strokes
    on half-pixel grids (centres at exactly r), repeated points, points off the image, tiny radii."""
    rng = np.random.default_rng(0)
    for _ in range(600):
        height, width = (int(v) for v in rng.integers(5, 70, 2))
        strokes = []
        for _ in range(int(rng.integers(1, 4))):
            n = int(rng.integers(1, 10))
            kind = int(rng.integers(0, 4))
            if kind == 0:
                pts = rng.uniform(-10, max(height, width) + 10, (n, 2))
            elif kind == 1:
                pts = rng.integers(-3, max(height, width) + 3, (n, 2)) + rng.choice([0, 0.5], (n, 2))
            elif kind == 2:
                pts = np.repeat(rng.uniform(0, 40, (1, 2)), n, 0)
                pts[:, int(rng.integers(0, 2))] += np.arange(n) * rng.choice([0, 1, 2.5])
            else:
                pts = np.round(rng.uniform(0, 60, (n, 2)) * 2) / 2
            radius = float(rng.choice([0.3, 0.5, 1, 1.5, 2, 3.5, 5, 8, rng.uniform(0.1, 20)]))
            strokes.append({"radius": radius, "erase": bool(rng.random() < 0.3), "points": [[x, y, 0] for x, y in pts]})
        assert np.array_equal(paint_mask(strokes, height, width), _paint_mask_by_definition(strokes, height, width)), strokes


def _session(rng, height, width):
    """Strokes as the paint page records them: random walks of 0.3-4 px steps in stimulus px (mouse,
    pen, or touch at whole / half pixels), the default brushes scaled to the image and rounded to
    0.01 px, some taps, some erase strokes, clamped to the image."""
    brushes = [round(r * max(width, height) / 500, 2) for r in (6.0, 14.0, 28.0)]
    strokes = []
    for _ in range(int(rng.integers(1, 12))):
        n = int(rng.choice([1, 2, 5, int(rng.integers(10, 400))]))
        x, y, angle = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0, 2 * np.pi)
        touch = rng.random() < 0.25
        points = []
        for i in range(n):
            angle += rng.normal(0, 0.3)
            step = rng.uniform(0.3, 4)
            x = float(np.clip(x + step * np.cos(angle), 0, width))
            y = float(np.clip(y + step * np.sin(angle), 0, height))
            px, py = (round(x * 2) / 2, round(y * 2) / 2) if touch else (x, y)
            points.append([px, py, 8.0 * i])
        strokes.append({"radius": float(rng.choice(brushes)), "erase": bool(rng.random() < 0.2), "points": points})
    return strokes


@pytest.mark.parametrize("chunk", [rasterize.CHUNK_PAIRS, 97])
def test_paint_mask_is_bit_identical_to_the_rasteriser_the_stored_maps_were_made_with(monkeypatch, chunk):
    """Stored human maps are rebuilt from raw responses: realistic sessions on real image sizes must
    give exactly the bits of the previous rasteriser (rasterize_v1_ref), also when a chunk of pairs
    ends inside a segment (chunk = 97)."""
    monkeypatch.setattr(rasterize, "CHUNK_PAIRS", chunk)
    rng = np.random.default_rng(18)
    sizes = [(375, 500), (500, 375), (480, 640), (683, 1024), (48, 64), (360, 480)]
    for i in range(20 if chunk == 97 else 60):
        height, width = sizes[i % len(sizes)]
        strokes = _session(rng, height, width)
        new, old = paint_mask(strokes, height, width), rasterize_v1_ref.paint_mask(strokes, height, width)
        assert np.array_equal(new, old), (height, width, strokes)


def test_paint_mask_memory_does_not_grow_with_the_points():
    """One stroke with a brush the size of the image: the old rasteriser held every (segment, row)
    pair at once (~150 KB a point here); now the peak is a few bytes a pixel whatever the points."""
    height, width = 375, 500
    rng = np.random.default_rng(1)

    def peak(n):
        stroke = {"radius": 500.0, "erase": False,
                  "points": [[x, y, 0.0] for x, y in zip(rng.uniform(0, width, n), rng.uniform(0, height, n))]}
        tracemalloc.start()
        try:
            assert paint_mask([stroke], height, width).all()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(100), peak(3000)
    assert large < 8 * 2**20, f"{large / 2**20:.1f} MiB for 3000 points"
    assert large - small < 2**20


def test_paint_work_counts_the_pairs_and_the_rows_a_stroke_touches():
    segment = {"radius": 5.0, "erase": False, "points": [[10.0, 50.5, 0.0], [90.0, 50.5, 1.0]]}
    # rows floor(45.5) = 45 .. ceil(55.5) = 56: 12 pairs, and 12 rows of 101 counters / 64
    assert paint_work([segment], 100, 100) == 12 + -(-12 * 101 // 64)
    off_image = {"radius": 2.0, "erase": True, "points": [[10.0, -50.0, 0.0]]}
    assert paint_work([off_image], 100, 100) == 0
    big = {"radius": 500.0, "erase": False, "points": [[250.0, 180.0, 0.0]] * 1001}
    assert paint_work([big], 375, 500) == 1000 * 375 + -(-375 * 501 // 64)
