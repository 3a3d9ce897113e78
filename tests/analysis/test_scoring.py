"""The metric suite gives exactly what the single functions give, for every kind of map pair."""
import math

import numpy as np
import pytest

from analysis import metrics
from analysis.scoring import ALL_METRICS, MAP_METRICS, HumanReference, metric_suite

rng = np.random.default_rng(3)


def _singles(p, q, f):
    out = {
        "pcc": metrics.pcc(p, q),
        "sim": metrics.sim(p, q),
        "spearman": metrics.spearman(p, q),
        "kld": metrics.kld(p, q),
        "iou_top10": metrics.iou_top(p, q, 0.1),
        "iou_top30": metrics.iou_top(p, q, 0.3),
    }
    if f is not None:
        out["nss"] = metrics.nss(p, f)
        out["auc_judd"] = metrics.auc_judd(p, f)
    return out


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


CASES = [
    (rng.random((30, 40)), rng.random((30, 40)) ** 2, None),
    (rng.random((15, 20)), np.round(rng.random((30, 40)) * 3), rng.random((30, 40)) < 0.05),  # P resized
    (np.zeros((30, 40)), rng.random((30, 40)), rng.random((30, 40)) < 0.05),  # all-zero model map
    (np.full((30, 40), 2.0), rng.random((30, 40)), None),  # constant model map
    (rng.random((30, 40)), np.zeros((30, 40)), np.zeros((30, 40), bool)),  # no responses' worth of map
]


def _mask(shape, rows, cols):
    mask = np.zeros(shape)
    mask[rows, cols] = 1.0
    return mask


# sparse binary maps (one participant's paint mask), constant maps and negative input: the cases where
# the top region must leave out the floor value, IoU and KLD must be NaN
EDGE_CASES = [
    (_mask((30, 40), slice(5, 12), slice(3, 20)), _mask((30, 40), slice(8, 15), slice(10, 30)), None),
    (rng.random((30, 40)), _mask((30, 40), slice(0, 6), slice(0, 10)), None),
    (_mask((15, 20), slice(2, 5), slice(2, 9)), _mask((30, 40), slice(4, 10), slice(4, 18)), None),  # P resized
    (np.full((30, 40), 0.5), _mask((30, 40), slice(5, 12), slice(3, 20)), None),
    (_mask((30, 40), slice(5, 12), slice(3, 20)), np.zeros((30, 40)), None),
    (rng.normal(size=(30, 40)), rng.random((30, 40)), rng.random((30, 40)) < 0.05),  # signed model map
    (rng.random((30, 40)), rng.random((30, 40)) - 0.01, None),  # a human map dipping below zero
    (-rng.random((30, 40)), rng.random((30, 40)), None),  # all negative: its negative sum would flip it positive
    (-rng.random((30, 40)), -rng.random((30, 40)), rng.random((30, 40)) < 0.05),
]


@pytest.mark.parametrize("p,q,f", CASES)
def test_suite_equals_the_single_functions(p, q, f):
    suite = metric_suite(p, HumanReference.prepare(q, f))
    singles = _singles(p, q, f)
    assert set(suite) == set(ALL_METRICS if f is not None else MAP_METRICS)
    for name, value in singles.items():
        assert _same(suite[name], value), (name, suite[name], value)


@pytest.mark.parametrize("p,q,f", EDGE_CASES)
def test_suite_equals_the_single_functions_on_sparse_binary_constant_and_negative_maps(p, q, f):
    suite = metric_suite(p, HumanReference.prepare(q, f))
    for name, value in _singles(p, q, f).items():
        assert _same(suite[name], value), (name, suite[name], value)
    constant = np.ptp(p) == 0 or np.ptp(q) == 0
    assert math.isnan(suite["iou_top30"]) == constant and math.isnan(suite["iou_top10"]) == constant
    negative = p.min() < 0 or q.min() < 0
    assert math.isnan(suite["kld"]) == negative
    if p.shape == q.shape and set(np.unique(p)) == set(np.unique(q)) == {0.0, 1.0}:  # two paint masks, under 30% each
        assert suite["iou_top30"] == suite["iou_top10"] == np.sum((p > 0) & (q > 0)) / np.sum((p > 0) | (q > 0))


def test_nan_in_the_model_map_gives_nan_everywhere():
    p = rng.random((10, 10))
    p[0, 0] = np.nan
    suite = metric_suite(p, HumanReference.prepare(rng.random((10, 10)), rng.random((10, 10)) < 0.2))
    assert all(math.isnan(v) for v in suite.values())


def test_fixations_must_match_the_human_map():
    with pytest.raises(ValueError, match="shape"):
        HumanReference.prepare(np.zeros((4, 4)), np.zeros((5, 5), bool))
