"""The metrics against references: pysaliency where its conventions are the platform's (CC, KLD,
AUC-Judd), the MIT definitions written out here where they are not (SIM, NSS's ddof), scipy for
Spearman, torch/Pillow for the resizing."""
import math

import numpy as np
import pytest
import scipy.stats
import torch
from PIL import Image

from analysis import metrics
from tests.analysis.pysaliency_ref import load

pysaliency = load()
rng = np.random.default_rng(0)


def _pairs():
    """Random continuous maps, quantised maps (many ties) and sparse maps."""
    yield rng.random((30, 40)), rng.random((30, 40)) ** 3
    yield np.round(rng.random((25, 25)) * 4), np.round(rng.random((25, 25)) * 2)
    sparse = np.zeros((20, 30))
    sparse[5:9, 10:20] = rng.random((4, 10))
    yield rng.gamma(2.0, size=(20, 30)), sparse


def _fixations(shape, k, seed=1):
    f = np.zeros(shape, dtype=bool)
    g = np.random.default_rng(seed)
    f.flat[g.choice(f.size, size=k, replace=False)] = True
    return f


# --- MIT definitions, written out ---------------------------------------------------------------


def mit_similarity(p, q):
    """MIT similarity.m: min-max normalise (if any non-zero), divide by the sum, sum of minima."""
    out = []
    for m in (p, q):
        m = m.astype(np.float64)
        if m.any():
            m = (m - m.min()) / (m.max() - m.min())
            m = m / m.sum()
        out.append(m)
    return np.minimum(*out).sum()


def mit_nss(p, f):
    """MIT NSS.m: map = (map - mean) / std (MATLAB's std is the sample std); mean at fixations."""
    z = (p - p.mean()) / np.std(p, ddof=1)
    return z[f.astype(bool)].mean()


def mit_kldiv(p, q):
    """MIT KLdiv.m with eps = 2.2204e-16."""
    eps = 2.2204e-16
    p = p / p.sum() if p.any() else p
    q = q / q.sum() if q.any() else q
    return (q * np.log(eps + q / (p + eps))).sum()


def iou_top_written_out(p, q, fraction):
    """The top region: at or above the (1 - fraction) percentile, ties included, never the minimum."""
    tp = (p >= np.percentile(p, 100 * (1 - fraction))) & (p != p.min())
    tq = (q >= np.percentile(q, 100 * (1 - fraction))) & (q != q.min())
    if not tp.any() or not tq.any():
        return math.nan
    return (tp & tq).sum() / (tp | tq).sum()


# --- agreement -------------------------------------------------------------------------------


@pytest.mark.parametrize("p,q", list(_pairs()))
def test_pcc_equals_pysaliency_cc_and_numpy(p, q):
    assert metrics.pcc(p, q) == pytest.approx(pysaliency.metrics.CC(p, q), abs=1e-12)
    assert metrics.pcc(p, q) == pytest.approx(np.corrcoef(p.ravel(), q.ravel())[0, 1], abs=1e-12)
    assert metrics.pcc(p, p) == pytest.approx(1.0) and metrics.pcc(p, -p) == pytest.approx(-1.0)


@pytest.mark.parametrize("p,q", list(_pairs()))
def test_sim_follows_mit_not_pysaliency(p, q):
    assert metrics.sim(p, q) == pytest.approx(mit_similarity(p, q), abs=1e-12)
    assert metrics.sim(p, p) == pytest.approx(1.0)


def test_sim_differs_from_pysaliency_when_the_minimum_is_not_zero():
    p, q = rng.random((20, 20)) + 1.0, rng.random((20, 20)) + 1.0
    assert abs(metrics.sim(p, q) - pysaliency.metrics.SIM(p, q)) > 0.05
    assert metrics.sim(p, q) == pytest.approx(mit_similarity(p, q), abs=1e-12)


@pytest.mark.parametrize("p,q", list(_pairs()))
def test_spearman_equals_scipy_including_ties(p, q):
    expected = scipy.stats.spearmanr(p.ravel(), q.ravel()).statistic
    assert metrics.spearman(p, q) == pytest.approx(expected, abs=1e-12)


def test_rank_average_equals_scipy_rankdata():
    x = np.round(rng.random(1000) * 7)
    assert np.array_equal(metrics.rank_average(x), scipy.stats.rankdata(x, method="average"))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # pysaliency's log(0) on zero pixels
@pytest.mark.parametrize("p,q", list(_pairs()))
def test_kld_equals_pysaliency_mit_kldiv_and_the_mit_code(p, q):
    assert metrics.kld(p, q) == pytest.approx(pysaliency.metrics.MIT_KLDiv(p, q), rel=1e-10, abs=1e-12)
    assert metrics.kld(p, q) == pytest.approx(mit_kldiv(p, q), rel=1e-12, abs=1e-12)
    assert metrics.kld(q, q) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("p,q", list(_pairs()))
@pytest.mark.parametrize("k", [1, 7, 60])
def test_auc_judd_equals_pysaliency_general_roc_judd(p, q, k):
    f = _fixations(p.shape, k)
    expected_numba = pysaliency.roc.general_roc(p[f].astype(float), p[~f].astype(float), judd=1)[0]
    from pysaliency.roc_cython import general_roc as general_roc_cython

    expected_cython = general_roc_cython(p[f].astype(float), p[~f].astype(float), judd=1)[0]
    assert metrics.auc_judd(p, f) == pytest.approx(expected_numba, abs=1e-12)
    assert metrics.auc_judd(p, f) == pytest.approx(expected_cython, abs=1e-12)


def test_auc_judd_extremes():
    p = np.zeros((10, 10))
    p[2, 3] = 5.0
    f = np.zeros((10, 10), bool)
    f[2, 3] = True
    assert metrics.auc_judd(p, f) == pytest.approx(1.0)
    # a fixation on the lowest value: its one threshold lets everything through, the curve is the diagonal
    assert metrics.auc_judd(-p, f) == pytest.approx(0.5)


@pytest.mark.parametrize("p,q", list(_pairs()))
def test_nss_is_mit_with_sample_std_and_relates_to_pysaliency(p, q):
    f = _fixations(p.shape, 9)
    assert metrics.nss(p, f) == pytest.approx(mit_nss(p, f), abs=1e-12)
    ys, xs = np.nonzero(f)
    population = pysaliency.metrics.NSS(p, xs, ys).mean()  # pysaliency: std with ddof=0
    assert metrics.nss(p, f) == pytest.approx(population * np.sqrt((p.size - 1) / p.size), abs=1e-12)


def test_nss_counts_each_fixated_pixel_once():
    p = rng.random((12, 12))
    counts = np.zeros((12, 12), int)
    counts[3, 4], counts[7, 7] = 5, 1
    assert metrics.nss(p, counts) == metrics.nss(p, counts > 0)


@pytest.mark.parametrize("fraction", [0.1, 0.3])
@pytest.mark.parametrize("p,q", list(_pairs()))
def test_iou_top_written_out(p, q, fraction):
    assert metrics.iou_top(p, q, fraction) == pytest.approx(iou_top_written_out(p, q, fraction), abs=1e-15)


def test_iou_top_ties_are_included_but_never_the_floor_value():
    a = np.arange(100, dtype=float).reshape(10, 10)
    assert metrics.iou_top(a, a, 0.1) == 1.0
    assert metrics.iou_top(a, a[::-1], 0.1) == 0.0
    steps = np.repeat([0.0, 1.0, 2.0, 3.0], 25).reshape(10, 10)  # the top 10% cut falls inside the tie at 3
    assert np.count_nonzero(metrics.top_region(steps, 0.1)) == 25
    # a constant map has no top region (its every pixel is its floor): undefined, not 30%
    for constant in (np.zeros((10, 10)), np.full((10, 10), 2.0)):
        assert not metrics.top_region(constant, 0.3).any()
        assert math.isnan(metrics.iou_top(constant, a, 0.3)) and math.isnan(metrics.iou_top(a, constant, 0.3))


def _paint_mask(shape, box):
    mask = np.zeros(shape)
    mask[box] = 1.0
    return mask


def test_iou_top_of_a_binary_paint_mask_is_its_painted_area_not_the_whole_image():
    """One participant's paint mask covering less than 30% of the image: its top-30% region is the
    painted area (the zero tie is the floor), so the IoU depends on the model map, not 0.3 for all."""
    shape = (40, 50)
    mask = _paint_mask(shape, np.s_[10:22, 5:25])  # 240 px = 12% of 2000
    assert metrics.top_region(mask, 0.3).sum() == 240 and metrics.top_region(mask, 0.1).sum() == 240
    g = np.random.default_rng(4)
    values = []
    for shift in (0, 8, 20):
        model = g.random(shape) * 0.1 + np.roll(mask, shift, axis=1)  # the painted area, moved right
        top = model >= np.percentile(model, 70)
        expected = (top & (mask > 0)).sum() / (top | (mask > 0)).sum()
        values.append(metrics.iou_top(model, mask, 0.3))
        assert values[-1] == pytest.approx(expected, abs=1e-15)
    assert values[0] > values[1] > values[2] and 0.3 not in values
    assert values[0] == pytest.approx(240 / 600)  # the mask lies inside the model's top 600 px
    # two masks: painted area against painted area
    other = _paint_mask(shape, np.s_[10:22, 15:35])
    assert metrics.iou_top(other, mask, 0.3) == pytest.approx(120 / 360)


def test_kld_is_nan_for_negative_input_as_promised():
    p, q = rng.random((12, 12)), rng.random((12, 12))
    # an all-negative map divided by its (negative) sum would pass for a distribution
    assert math.isnan(metrics.kld(-p, q)) and math.isnan(metrics.kld(p, -q)) and math.isnan(metrics.kld(-p, -q))
    # a negative pixel where the other map is negative too would give a finite log
    p_dip, q_dip = p.copy(), q.copy()
    p_dip[3, 4] = q_dip[3, 4] = -1e-3
    assert math.isnan(metrics.kld(p_dip, q_dip))
    signed = rng.normal(size=(12, 12))
    assert math.isnan(metrics.kld(signed, q)) and math.isnan(metrics.kld(q, signed))
    assert np.isfinite(metrics.kld(np.abs(signed), q)) and np.isfinite(metrics.kld(p, q))  # non-negative: defined


# --- edge cases: NaN, never raise -------------------------------------------------------------


def test_constant_maps():
    q, c = rng.random((8, 8)), np.full((8, 8), 3.0)
    f = _fixations((8, 8), 3)
    assert math.isnan(metrics.pcc(c, q)) and math.isnan(metrics.pcc(q, c))
    assert math.isnan(metrics.spearman(c, q))
    assert math.isnan(metrics.sim(c, q))
    assert math.isnan(metrics.nss(c, f))
    assert metrics.auc_judd(c, f) == pytest.approx(0.5)  # every threshold ties: the chance diagonal
    assert np.isfinite(metrics.kld(c, q))


def test_all_zero_maps():
    q, z = rng.random((8, 8)), np.zeros((8, 8))
    assert metrics.sim(z, q) == 0.0 and metrics.sim(q, z) == 0.0
    assert metrics.kld(z, q) == pytest.approx(mit_kldiv(z, q))
    assert metrics.kld(q, z) == 0.0
    assert math.isnan(metrics.pcc(z, q))


def test_no_fixation_or_all_fixated_is_nan():
    p = rng.random((6, 6))
    for f in (np.zeros((6, 6), bool), np.ones((6, 6), bool)):
        assert math.isnan(metrics.auc_judd(p, f))
    assert math.isnan(metrics.nss(p, np.zeros((6, 6), bool)))


def test_non_finite_input_gives_nan_and_never_raises():
    q = rng.random((10, 10))
    bad = q.copy()
    bad[3, 3] = np.nan
    f = _fixations((10, 10), 4)
    values = [metrics.pcc(bad, q), metrics.sim(bad, q), metrics.spearman(bad, q), metrics.kld(bad, q),
              metrics.iou_top(bad, q, 0.1), metrics.nss(bad, f), metrics.auc_judd(bad, f), metrics.iou_top(q, bad, 0.3)]
    assert all(math.isnan(v) for v in values)


# --- shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(40, 50), (200, 300), (97, 60), (1, 1)])
def test_resize_is_antialiased_bilinear_like_torch_and_pillow(shape):
    big = rng.random((97, 131))
    ours = metrics.resize_to(big, shape)
    ref = torch.nn.functional.interpolate(torch.from_numpy(big)[None, None], size=shape, mode="bilinear", antialias=True, align_corners=False)
    assert np.allclose(ours, ref[0, 0].numpy(), atol=1e-12)
    pillow = np.asarray(Image.fromarray(big.astype(np.float32)).resize(shape[::-1], Image.BILINEAR))
    assert np.allclose(ours, pillow, atol=1e-5)


def test_model_map_is_resized_to_the_human_map():
    q = np.zeros((40, 60))
    q[:, 30:] = 1
    p = np.zeros((20, 30))
    p[:, 15:] = 1
    assert metrics.pcc(p, q) == pytest.approx(metrics.pcc(metrics.resize_to(p, q.shape), q))
    assert metrics.pcc(p, q) > 0.95
    f = np.zeros((40, 60), bool)
    f[10, 45] = True
    assert metrics.auc_judd(p, f) > 0.7 and metrics.nss(p, f) > 0.5


@pytest.mark.parametrize("case", ["continuous", "ties", "spiky", "negative", "small"])
def test_counts_at_or_above_bucketed_path_is_exact(case):
    g = np.random.default_rng(11)
    values = g.random(300_000) if case != "small" else g.random(30_000)
    if case == "ties":
        values = np.round(values * 50) / 50
    elif case == "spiky":
        values = np.where(g.random(300_000) < 0.001, 1e9, values * 1e-9)
    elif case == "negative":
        values = -g.gamma(1.0, size=300_000)
    thresholds = np.unique(g.choice(values, 150))
    thresholds = np.unique(np.concatenate([thresholds, np.nextafter(thresholds, np.inf)]))
    expected = np.array([np.count_nonzero(values >= t) for t in thresholds])
    assert np.array_equal(metrics.counts_at_or_above(values, thresholds), expected)


def test_auc_judd_on_a_large_map_equals_pysaliency():
    g = np.random.default_rng(12)
    p = np.round(g.random((600, 600)) * 1000) / 1000  # bucketed path, with ties
    f = _fixations(p.shape, 300, seed=3)
    expected = pysaliency.roc.general_roc(p[f].astype(float), p[~f].astype(float), judd=1)[0]
    assert metrics.auc_judd(p, f) == pytest.approx(expected, abs=1e-12)
