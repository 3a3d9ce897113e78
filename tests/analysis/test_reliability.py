"""Ceiling, floor, reliability curves and bootstrap CIs on synthetic participants whose truth we know."""
import math

import numpy as np
import pytest

from analysis.split_half import ParticipantStack, ceiling_and_floor, reliability_curve
from analysis.statistics import bootstrap_columns, bootstrap_summary, normalised_summary


def _blob(shape, centre, sigma):
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))


def _participants(n, centre, noise, seed, shape=(40, 50)):
    """n noisy copies of one 'true' map, each normalised to sum 1 (like point densities)."""
    g = np.random.default_rng(seed)
    truth = _blob(shape, centre, 6)
    maps = np.clip(truth[None] + noise * g.random((n, *shape)), 0, None)
    return ParticipantStack(maps / maps.sum(axis=(1, 2), keepdims=True))


def test_identical_participants_have_a_perfect_ceiling():
    own = ParticipantStack(np.repeat(_blob((30, 30), (10, 10), 4)[None], 6, axis=0))
    result = ceiling_and_floor(own, [], repetitions=5, rng=np.random.default_rng(0))
    assert result.summary("pcc")["ceiling"] == pytest.approx(1.0)
    assert result.summary("iou_top10")["ceiling"] == pytest.approx(1.0)
    assert math.isnan(result.summary("pcc")["floor"])  # no other stimulus


def test_ceiling_above_floor_and_floor_near_unrelated_agreement():
    own = _participants(12, (12, 10), 0.5, seed=1)
    other = _participants(12, (40, 30), 0.5, seed=2)
    result = ceiling_and_floor(own, [other], repetitions=20, rng=np.random.default_rng(0))
    s = result.summary("pcc")
    assert s["ceiling"] > 0.85 and s["floor"] < 0.2 and s["ceiling_std"] >= 0
    assert result.summary("kld")["ceiling"] < result.summary("kld")["floor"]  # lower is better


def test_bootstrap_lowers_the_ceiling_versus_plain_halves_for_noisy_maps():
    """Bootstrapping each half back to n (with replacement) repeats some participants, so the half-map
    is noisier than the plain half mean: the ClickMe ceiling is conservative."""
    own = _participants(10, (25, 20), 3.0, seed=4)
    boot = ceiling_and_floor(own, [], repetitions=40, rng=np.random.default_rng(1)).summary("pcc")["ceiling"]
    curve = reliability_curve(own, repetitions=40, rng=np.random.default_rng(1), metric_names=["pcc"])["pcc"]
    plain_halves = curve[-1][1]  # k = n // 2
    assert boot < plain_halves


def test_seeded_runs_reproduce_and_seeds_matter():
    own, other = _participants(8, (12, 10), 1.0, seed=5), _participants(8, (30, 20), 1.0, seed=6)
    a = ceiling_and_floor(own, [other], repetitions=6, rng=np.random.default_rng(42))
    b = ceiling_and_floor(own, [other], repetitions=6, rng=np.random.default_rng(42))
    c = ceiling_and_floor(own, [other], repetitions=6, rng=np.random.default_rng(43))
    assert a.ceiling == b.ceiling and a.floor == b.floor
    assert a.ceiling != c.ceiling


def test_too_few_participants_is_undefined_not_an_error():
    one = _participants(1, (12, 10), 1.0, seed=7)
    result = ceiling_and_floor(one, [one], repetitions=5, rng=np.random.default_rng(0))
    assert math.isnan(result.summary("pcc")["ceiling"]) and math.isnan(result.summary("pcc")["floor"])
    assert reliability_curve(one, repetitions=3, rng=np.random.default_rng(0)) == {"pcc": [], "sim": []}


def test_fixation_metrics_use_the_other_half_fixations():
    g = np.random.default_rng(8)
    maps = _participants(6, (20, 20), 0.2, seed=8)
    fix = (g.random(maps.maps.shape) < 0.001).astype(np.float32)
    fix[:, 20, 20] = 1
    result = ceiling_and_floor(ParticipantStack(maps.maps, fix), [], repetitions=5, rng=np.random.default_rng(0))
    assert result.summary("auc_judd")["ceiling"] > 0.6 and result.summary("nss")["ceiling"] > 0.5


def test_reliability_grows_with_the_number_of_participants():
    own = _participants(16, (25, 20), 1.5, seed=9)
    curve = reliability_curve(own, repetitions=15, rng=np.random.default_rng(0), metric_names=["pcc"])["pcc"]
    ks = [row[0] for row in curve]
    means = [row[1] for row in curve]
    assert ks == list(range(1, 9))
    assert means[-1] > means[0] + 0.2
    assert all(b > a - 0.05 for a, b in zip(means, means[1:]))


def test_bootstrap_summary():
    g = np.random.default_rng(0)
    values = list(g.normal(0.5, 0.1, size=40)) + [float("nan"), None]
    s = bootstrap_summary(values, rng=np.random.default_rng(1))
    clean = np.asarray(values[:40])
    assert s.n == 40 and s.mean == pytest.approx(clean.mean()) and s.std == pytest.approx(clean.std(ddof=1))
    assert s.ci_low < s.mean < s.ci_high
    # about mean +/- 1.96 standard errors
    assert s.ci_high - s.ci_low == pytest.approx(2 * 1.96 * clean.std(ddof=1) / np.sqrt(40), rel=0.2)
    assert bootstrap_summary(values, rng=np.random.default_rng(1)) == s
    one = bootstrap_summary([0.3], rng=np.random.default_rng(1))
    assert one.n == 1 and one.mean == 0.3 and math.isnan(one.ci_low)
    assert bootstrap_summary([], rng=np.random.default_rng(1)).n == 0


def test_normalised_summary_is_the_ratio_of_means():
    model, ceiling, floor = [0.4, 0.5, 0.6, float("nan")], [0.8, 0.9, 1.0, 0.9], [0.0, 0.1, 0.2, 0.1]
    s = normalised_summary(model, ceiling, floor, rng=np.random.default_rng(0))
    assert s.n == 3 and s.mean == pytest.approx((0.5 - 0.1) / (0.9 - 0.1))
    assert s.ci_low <= s.mean <= s.ci_high


def test_bootstrap_columns_share_a_draw_and_match_single_columns():
    g = np.random.default_rng(2)
    values = g.normal(size=(30, 3))
    values[4, 2] = np.nan
    summaries = bootstrap_columns(values, rng=np.random.default_rng(5))
    assert [s.n for s in summaries] == [30, 30, 29]
    alone = bootstrap_summary(list(values[:, 0]), rng=np.random.default_rng(5))
    assert np.allclose(list(summaries[0].__dict__.values()), list(alone.__dict__.values()), rtol=1e-12)
    assert summaries[2].mean == pytest.approx(np.nanmean(values[:, 2]))


def test_normalised_columns_equal_one_column_at_a_time():
    from analysis.statistics import normalised_columns

    g = np.random.default_rng(3)
    model, ceiling, floor = g.random((25, 3)), 0.8 + 0.1 * g.random((25, 3)), 0.1 * g.random((25, 3))
    model[2, 1] = np.nan
    together = normalised_columns(model, ceiling, floor, rng=np.random.default_rng(9))
    for j in (0, 2):  # same finite stimuli as column 0: the same draw
        alone = normalised_summary(model[:, j], ceiling[:, j], floor[:, j], rng=np.random.default_rng(9))
        assert together[j].note == alone.note == ""
        numbers = ("n", "mean", "std", "ci_low", "ci_high")
        assert np.allclose([getattr(together[j], k) for k in numbers], [getattr(alone, k) for k in numbers], rtol=1e-12)
    assert together[1].n == 24
