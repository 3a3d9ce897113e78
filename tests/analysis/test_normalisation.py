"""Normalised scores: (model - floor) / (ceiling - floor) only where the ceiling is better than the floor
by the margin; NaN with a stated reason otherwise, per stimulus and per summary row, in the tables."""
import csv
import io
import math

import numpy as np
import pytest

from analysis.normalisation import NO_BOUNDS, NO_SCORE, normalise, normalise_one
from analysis.report_tables import (
    CeilingRecord,
    ScoreRecord,
    reliability_csv,
    reliability_rows,
    summary_csv,
    summary_rows,
)
from analysis.statistics import normalised_columns, normalised_summary

# The study that showed the problem: "coffee with noise" had ceiling 0.7996 and floor 0.7994, and its
# score 0.7165 came out normalised as -414.5; "coffee original" had its floor (0.867) above its
# ceiling (0.844), and 0.6717 came out as +8.49.
NOISE = (0.7165, 0.7996, 0.7994)
FLIPPED = (0.6717, 0.844, 0.867)


def test_the_ratio_would_be_noise_on_these_numbers():
    for (m, c, f), ratio in ((NOISE, -414.5), (FLIPPED, 8.49)):
        assert (m - f) / (c - f) == pytest.approx(ratio, abs=0.01)


def test_a_stimulus_with_a_near_zero_range_has_no_normalised_score_and_says_why():
    value, reason = normalise_one(*NOISE)
    assert math.isnan(value)
    assert reason == "ceiling 0.7996 and floor 0.7994 differ by 0.0002, under 5% of |ceiling| + |floor|"


def test_a_floor_above_the_ceiling_gives_no_normalised_score():
    value, reason = normalise_one(*FLIPPED)
    assert math.isnan(value) and reason == "ceiling 0.844 is not above floor 0.867"
    value, reason = normalise_one(0.5, 0.6, 0.6)
    assert math.isnan(value) and reason == "ceiling 0.6 is not above floor 0.6"


def test_a_clear_range_normalises_as_before():
    assert normalise_one(0.5, 0.9, 0.1) == (pytest.approx(0.5), "")
    assert normalise_one(1.0, 0.9, 0.1) == (pytest.approx(1.125), "")  # beyond the ceiling is allowed
    # the margin: 5% of |ceiling| + |floor|; just above it is defined, just below is not
    assert normalise_one(0.5, 1.0, 0.9)[1] == ""  # gap 0.1 >= 0.095
    assert "under 5%" in normalise_one(0.5, 1.0, 0.91)[1]  # gap 0.09 < 0.0955
    # scale-free: NSS-like values far from 1 and negative floors
    assert normalise_one(1.0, 2.0, -0.05)[0] == pytest.approx(1.05 / 2.05)


def test_lower_is_better_metrics_need_the_ceiling_below_the_floor():
    # KLD: (floor - model) / (floor - ceiling)
    assert normalise_one(1.0, 0.5, 2.0, lower_is_better=True) == (pytest.approx(1.0 / 1.5), "")
    value, reason = normalise_one(1.0, 2.5, 2.0, lower_is_better=True)
    assert math.isnan(value) and reason == "ceiling 2.5 is not below floor 2"
    assert "under 5%" in normalise_one(1.0, 1.99, 2.0, lower_is_better=True)[1]
    # the same numbers read as higher-is-better are refused the other way round
    assert normalise_one(1.0, 0.5, 2.0)[1] == "ceiling 0.5 is not above floor 2"


def test_confidence_intervals_replace_the_gap_rule_where_they_exist():
    # CIs overlap: undefined even though the 5% gap rule alone would pass
    value, reason = normalise_one(0.5, 0.6, 0.4, ceiling_ci=(0.45, 0.75), floor_ci=(0.3, 0.5))
    assert math.isnan(value) and reason == "ceiling CI [0.45, 0.75] overlaps floor CI [0.3, 0.5]"
    # CIs apart: defined even where the gap is under 5% (a precisely measured small range)
    assert normalise_one(0.6, 0.62, 0.6, ceiling_ci=(0.615, 0.625), floor_ci=(0.595, 0.605)) == (pytest.approx(0.0), "")
    # lower is better: the ceiling's CI must lie below the floor's
    assert normalise_one(1.0, 0.5, 2.0, lower_is_better=True, ceiling_ci=(0.4, 0.6), floor_ci=(1.8, 2.2))[1] == ""
    assert "overlaps" in normalise_one(1.0, 0.5, 2.0, lower_is_better=True, ceiling_ci=(0.4, 1.9), floor_ci=(1.8, 2.2))[1]
    # a missing CI (NaN) falls back to the gap rule
    assert "under 5%" in normalise_one(*NOISE, ceiling_ci=(math.nan, math.nan), floor_ci=(0.79, 0.8))[1]


def test_missing_values_are_named():
    assert normalise_one(0.5, None, 0.1) == (pytest.approx(math.nan, nan_ok=True), NO_BOUNDS)
    assert normalise_one(None, 0.9, 0.1)[1] == NO_SCORE
    assert normalise_one(math.nan, 0.9, 0.1)[1] == NO_SCORE


def test_arrays_broadcast_with_one_reason_per_cell():
    model = np.array([[0.5, 0.7165], [0.6717, 1.0]])
    ceiling = np.array([[0.9, 0.7996], [0.844, 0.5]])
    floor = np.array([[0.1, 0.7994], [0.867, 2.0]])
    values, reasons = normalise(model, ceiling, floor, lower_is_better=[False, True])
    assert values[0, 0] == pytest.approx(0.5) and values[1, 1] == pytest.approx(1 / 1.5)
    assert np.isnan(values[0, 1]) and np.isnan(values[1, 0])
    assert reasons[0, 0] == reasons[1, 1] == ""
    assert reasons[0, 1] == "ceiling 0.7996 is not below floor 0.7994"  # column 1 is lower-is-better
    assert reasons[1, 0] == "ceiling 0.844 is not above floor 0.867"
    values, reasons = normalise(model[:, 1], ceiling[:, 1], floor[:, 1])  # both higher-is-better
    assert "under 5%" in reasons[0] and reasons[1] == "ceiling 0.5 is not above floor 2"


# --- summary rows: the means are normalised, with the same guard ---------------------------------


def test_a_summary_over_near_zero_ranges_is_undefined_with_a_reason():
    n = 6
    g = np.random.default_rng(1)
    ceiling = 0.7996 + g.normal(0, 0.02, n)  # stimuli differ: ceilings and floors spread over a few hundredths
    floor = 0.7994 + g.normal(0, 0.02, n)
    model = 0.7165 + g.normal(0, 0.01, n)
    s = normalised_summary(model, ceiling, floor, rng=np.random.default_rng(0))
    assert s.n == n and math.isnan(s.mean) and math.isnan(s.ci_low) and "overlaps floor CI" in s.note
    flipped = normalised_summary([0.6717] * 3, [0.844, 0.84, 0.85], [0.867, 0.87, 0.86], rng=np.random.default_rng(0))
    assert math.isnan(flipped.mean) and flipped.note == "ceiling 0.8447 is not above floor 0.8657"
    one = normalised_summary(*([v] for v in NOISE), rng=np.random.default_rng(0))
    assert one.n == 1 and math.isnan(one.mean) and "under 5%" in one.note  # one stimulus: no CI, the gap rule


def test_ceilings_and_floors_measured_apart_stay_defined_and_a_wide_ci_is_flagged_unsteady():
    """Where the CIs exist and are apart, the range is real however small; the ⚠ flag of the report
    then marks a normalised score whose own CI is too wide to place the model."""
    from studyserver.researcher.templatetags.dashboard_tags import unsteady

    g = np.random.default_rng(1)
    ceiling, floor = 0.7996 + g.normal(0, 1e-4, 6), 0.7994 + g.normal(0, 1e-4, 6)
    s = normalised_summary(0.7165 + g.normal(0, 0.01, 6), ceiling, floor, rng=np.random.default_rng(0))
    assert s.note == "" and s.mean < -100 and unsteady(s)
    clear = normalised_summary([0.5, 0.6, 0.55], [0.9, 0.85, 0.95], [0.1, 0.15, 0.12], rng=np.random.default_rng(0))
    assert clear.note == "" and not unsteady(clear)


def test_a_stimulus_without_its_own_normalised_score_still_counts_in_the_summary_means():
    model = np.array([0.7165, 0.5, 0.6, 0.55])
    ceiling = np.array([0.7996, 0.9, 0.85, 0.95])
    floor = np.array([0.7994, 0.1, 0.15, 0.12])
    s = normalised_summary(model, ceiling, floor, rng=np.random.default_rng(0))
    expected = (model.mean() - floor.mean()) / (ceiling.mean() - floor.mean())  # the coffee stimulus included
    assert s.n == 4 and s.note == "" and s.mean == pytest.approx(expected)
    # its std is over the stimuli whose own normalised score is defined (the -414.5 is left out)
    own = [(m - f) / (c - f) for m, c, f in zip(model[1:], ceiling[1:], floor[1:])]
    assert s.std == pytest.approx(np.std(own, ddof=1))
    assert s.ci_low <= s.mean <= s.ci_high


def test_summary_columns_follow_each_metrics_direction():
    model = np.array([[0.5, 1.0], [0.6, 1.2], [0.55, 0.9]])
    ceiling = np.array([[0.9, 0.5], [0.95, 0.6], [0.85, 0.55]])
    floor = np.array([[0.1, 2.0], [0.15, 2.1], [0.12, 1.9]])
    higher, lower = normalised_columns(model, ceiling, floor, lower_is_better=[False, True], rng=np.random.default_rng(0))
    assert higher.note == lower.note == ""
    assert lower.mean == pytest.approx((floor[:, 1].mean() - model[:, 1].mean()) / (floor[:, 1].mean() - ceiling[:, 1].mean()))
    wrong = normalised_columns(model, ceiling, floor, lower_is_better=False, rng=np.random.default_rng(0))[1]
    assert math.isnan(wrong.mean) and "is not above floor" in wrong.note


def _records():
    """A paint study with the two coffee stimuli (one per condition) and three sound stimuli."""
    scores, ceilings = [], []
    for sid, condition, (m, c, f) in ((1, "noise", NOISE), (2, "original", FLIPPED)):
        scores.append(ScoreRecord(sid, condition, "paint", "lite0", "gradcam", "default", "sim", m))
        ceilings.append(CeilingRecord(sid, condition, "paint", "sim", 6, c, f))
    for sid, (m, c, f) in zip((3, 4, 5), ((0.5, 0.9, 0.1), (0.6, 0.85, 0.15), (0.55, 0.95, 0.12))):
        scores.append(ScoreRecord(sid, "original", "paint", "lite0", "gradcam", "default", "sim", m))
        ceilings.append(CeilingRecord(sid, "original", "paint", "sim", 6, c, f))
    return scores, ceilings


def test_report_rows_and_csv_tables_carry_the_note():
    scores, ceilings = _records()
    rows = {r.condition: r for r in summary_rows(scores, [], ceilings)}
    noise = rows["noise"].normalised["sim"]
    assert math.isnan(noise.mean) and noise.n == 1 and "under 5%" in noise.note
    assert rows["noise"].metrics["sim"].mean == pytest.approx(0.7165)  # the raw score stays
    original = rows["original"].normalised["sim"]
    assert original.n == 4 and original.note == "" and np.isfinite(original.mean)  # the flipped stimulus counts in the means
    lines = {r["condition"]: r for r in csv.DictReader(io.StringIO(summary_csv(list(rows.values()))))}
    assert lines["noise"]["sim_normalised_mean"] == "" and "under 5%" in lines["noise"]["sim_normalised_note"]
    assert lines["original"]["sim_normalised_note"] == "" and float(lines["original"]["sim_normalised_mean"]) > 0
    assert lines["noise"]["pcc_normalised_note"] == ""  # no pcc at all: nothing to explain
    reliability = {r.condition: r for r in reliability_rows(ceilings)}
    assert "under 5%" in reliability["noise"].note and reliability["original"].note == ""
    table = {r["condition"]: r for r in csv.DictReader(io.StringIO(reliability_csv(list(reliability.values()))))}
    assert "under 5%" in table["noise"]["note"]


def test_a_metric_without_ceilings_says_so():
    scores, _ = _records()
    row = summary_rows(scores, [], [])[0]
    assert row.normalised["sim"].n == 0 and row.normalised["sim"].note == NO_BOUNDS
