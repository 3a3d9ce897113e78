"""Quality signals per participant and the flag rule, on constructed participants whose behaviour we know."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis import metrics
from analysis.quality import (
    QualityRulesInvalid,
    TrialEvidence,
    answer_digest,
    answer_summary,
    leave_one_out,
    participant_signals,
    quality_flags,
    quality_rules_clean,
    quality_signals,
    signal_fences,
)

ROOT = Path(__file__).resolve().parents[2]
SIZE = 24


def _blob(centre, sigma=2.5, size=SIZE):
    axis = np.arange(size) + 0.5
    xs, ys = np.meshgrid(axis, axis)
    m = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    return m / m.sum()


def _study(behaviours, images=8, seed=0, centres=None, k=None):
    """Every participant answers every image (k None) with a map by behaviour: honest = the image's
    blob moved by a little noise, random = noise, centre = the same central blob everywhere.
    Returns the trials with running sums over everyone, as the platform keeps them."""
    g = np.random.default_rng(seed)
    centres = centres or [tuple(g.uniform(4, SIZE - 4, 2)) for _ in range(images)]
    maps = {}
    for p, behaviour in enumerate(behaviours):
        for i, c in enumerate(centres):
            if behaviour == "honest":
                m = _blob(np.asarray(c) + g.normal(0, 1.0, 2)) + 0.002 * g.random((SIZE, SIZE))
            elif behaviour == "random":
                m = g.random((SIZE, SIZE))
            else:  # centre
                m = _blob((SIZE / 2, SIZE / 2), 3.0)
            maps[p, i] = m
    sums = {i: sum(maps[p, i] for p in range(len(behaviours))) for i in range(len(centres))}
    return [TrialEvidence(p, i, maps[p, i], sums[i], len(behaviours), True, 5000.0, 5, None, 0.05, f"{p}-{i}")
            for p in range(len(behaviours)) for i in range(len(centres))]


def test_leave_one_out_is_the_mean_of_the_others_from_the_running_sum():
    maps = [np.random.default_rng(i).random((5, 6)) for i in range(4)]
    total = sum(maps)
    trial = TrialEvidence("a", 1, maps[2], total, 4)
    assert np.allclose(leave_one_out(trial), (maps[0] + maps[1] + maps[3]) / 3)
    # an excluded participant is no longer in the sum: the others are all of it
    excluded = TrialEvidence("a", 1, maps[2], total - maps[2], 3, includes_own=False)
    assert np.allclose(leave_one_out(excluded), (maps[0] + maps[1] + maps[3]) / 3)
    assert leave_one_out(TrialEvidence("a", 1, maps[0], maps[0], 1)) is None  # nobody else


def test_agreement_is_the_pcc_with_the_leave_one_out_map_centred_on_the_stimulus():
    trials = _study(["honest"] * 6 + ["random", "centre"])
    raw = participant_signals([t for t in trials if t.participant_id == 0])
    for t, value in zip([t for t in trials if t.participant_id == 0], raw.agreements):
        others = sum(u.participant_map for u in trials if u.stimulus_id == t.stimulus_id and u.participant_id != 0) / 7
        assert value == pytest.approx(metrics.pcc(t.participant_map, others), abs=1e-12)
    signals = quality_signals(trials)
    honest = [signals[p]["agreement"] for p in range(6)]
    assert min(honest) > signals[6]["agreement"] and min(honest) > signals[7]["agreement"]
    assert abs(np.median(honest)) < 0.05  # centred: the typical participant sits near 0
    assert signals[0]["agreement_pcc"] == pytest.approx(np.mean(raw.agreements))


def test_an_image_that_is_hard_for_everyone_costs_nobody():
    """Agreement is centred per stimulus: participants who only saw a hard image are not below the
    others for it."""
    easy = _study(["honest"] * 6, images=1, seed=1, centres=[(8.0, 8.0)])
    g = np.random.default_rng(2)
    hard_maps = [_blob((16.0, 16.0), 2.5) + 0.02 * g.random((SIZE, SIZE)) for _ in range(6)]
    hard_sum = sum(hard_maps)
    hard = [TrialEvidence(10 + p, "hard", m, hard_sum, 6, True, 5000.0) for p, m in enumerate(hard_maps)]
    signals = quality_signals(easy + hard)
    pcc_easy = np.median([signals[p]["agreement_pcc"] for p in range(6)])
    pcc_hard = np.median([signals[10 + p]["agreement_pcc"] for p in range(6)])
    assert pcc_hard < pcc_easy - 0.2
    assert abs(np.median([signals[10 + p]["agreement"] for p in range(6)])) < 1e-9


def test_specificity_finds_the_same_region_on_every_image_even_when_everyone_is_centre_biased():
    # every image's true blob lies near the centre, as in real photos
    centres = [(SIZE / 2 + dx, SIZE / 2 + dy) for dx, dy in [(-3, -2), (2, 3), (3, -3), (-2, 3), (0, -4), (4, 1)]]
    trials = _study(["honest"] * 7 + ["centre"], centres=centres, seed=3)
    signals = quality_signals(trials)
    straight = signals[7]["specificity"]
    assert abs(straight) < 0.05
    assert min(signals[p]["specificity"] for p in range(7)) > straight + 0.15


def test_specificity_with_maps_of_different_sizes_equals_the_pairwise_definition():
    g = np.random.default_rng(4)
    shapes = [(20, 30), (24, 24), (18, 18)]
    own = [g.random(s) for s in shapes]
    sums = [own[i] + 3 * g.random(s) for i, s in enumerate(shapes)]
    trials = [TrialEvidence("p", i, own[i], sums[i], 4) for i in range(3)]
    loo = [(sums[i] - own[i]) / 3 for i in range(3)]
    cross = np.array([[metrics.pcc(loo[b], own[a]) for b in range(3)] for a in range(3)])
    expected = np.mean(np.diag(cross)) - np.mean(cross[~np.eye(3, dtype=bool)])
    assert participant_signals(trials).specificity == pytest.approx(expected, abs=1e-12)


def test_effort_identical_answers_and_catch_trials():
    def trial(p, i, duration, marks=5, touched=0.05, digest=None, catch=None, score=None):
        m = _blob((10.0 + i, 12.0))
        return TrialEvidence(p, i, None if catch is not None else m, m * 3, 3, True, duration, marks, None, touched,
                             digest or f"{p}-{i}", catch, score)

    trials = [trial("a", i, 4000.0 + 1000 * i) for i in range(4)]  # a: 4000..7000 ms
    trials += [trial("b", i, 1000.0, marks=1, touched=0.01, digest="same") for i in range(4)]
    trials += [trial("a", 90, 3000.0, catch=True, score=0.8), trial("a", 91, 3000.0, catch=False, score=0.2),
               trial("b", 92, 900.0, catch=True)]
    signals = quality_signals(trials)
    study_median = np.median([4000.0, 5000.0, 6000.0, 7000.0, 1000.0, 1000.0, 1000.0, 1000.0])
    assert signals["a"]["time"] == pytest.approx(5500.0 / study_median)
    assert signals["b"]["time"] == pytest.approx(1000.0 / study_median)
    assert signals["a"]["marks"] == 5 and signals["b"]["marks"] == 1 and signals["b"]["touched"] == 0.01
    assert signals["a"]["identical"] == 0.0 and signals["b"]["identical"] == 1.0
    assert signals["a"]["catch"] == 0.5 and signals["b"]["catch"] == 1.0
    assert signals["a"]["catch_score"] == pytest.approx(0.5) and math.isnan(signals["b"]["catch_score"])


def test_answer_summary_and_digest():
    payload = {"clicks": [[5.0, 5.0, 100], [15.5, 5.0, 900]], "bubble_radius": 3.0}
    summary = answer_summary("bubble", payload, height=20, width=20)
    # two discs of radius 3 that do not overlap: 2 x 29 pixel centres within 3 px
    assert summary["marks"] == 2 and summary["touched_fraction"] == pytest.approx(2 * 29 / 400)
    replay = {"clicks": [[5.0, 5.0, 300], [15.5, 5.0, 2000]], "bubble_radius": 3.0}
    assert answer_digest("bubble", replay) == summary["digest"]
    assert answer_digest("bubble", {"clicks": [[5.0, 5.1, 300]]}) != summary["digest"]
    strokes = [{"radius": 3.0, "erase": False, "points": [[5, 10, 0], [15, 10, 50]]},
               {"radius": 3.0, "erase": True, "points": [[10, 10, 100]]}]
    paint = answer_summary("paint", {"strokes": strokes}, height=20, width=20)
    assert paint["marks"] == 2 and 0 < paint["painted_fraction"] < paint["touched_fraction"]
    assert answer_summary("mouse", {"samples": [], "window_radius": 4.0}, height=8, width=8)["touched_fraction"] == 0


def _rules(**given):
    return quality_rules_clean(given)


def test_the_flag_is_a_fence_at_k_iqr_on_the_low_side_and_asks_for_review():
    values = {p: {"agreement": v} for p, v in enumerate([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, -2.0, -0.2])}
    q1, q3 = np.percentile([v["agreement"] for v in values.values()], [25, 75])
    low = q1 - 3 * (q3 - q1)
    assert signal_fences([v["agreement"] for v in values.values()], "agreement", 3.0)[0] == pytest.approx(low)
    flags = quality_flags(values, _rules())
    flagged = {p for p, v in flags.items() if v["flagged"]}
    assert flagged == {p for p, v in values.items() if v["agreement"] < low} == {9}
    assert flags[9]["action"] == "review" and "agreement" in flags[9]["reasons"][0]
    assert json.loads(json.dumps(flags, allow_nan=False)) == {str(p): v for p, v in flags.items()}  # storable
    assert flags[0]["action"] is None
    # a tighter multiplier (the study's) flags more; exclusion only when the study says so
    assert quality_flags(values, _rules(iqr_multiplier=0.4))[10]["flagged"]
    assert not quality_flags(values, _rules())[10]["flagged"]
    assert quality_flags(values, _rules(action="exclude"))[9]["action"] == "exclude"


def test_thresholds_the_study_sets_and_fences_that_cannot_tell_anyone_apart():
    values = {p: {"time": 1.0, "identical": 0.0, "catch": 1.0} for p in range(10)}
    values[3] = {"time": 0.05, "identical": 0.3, "catch": 0.5}
    flags = quality_flags(values, _rules())
    # time: most participants identical -> zero IQR -> no fence; identical: any repeat flags by default
    assert flags[3]["flagged"] and all("identical" in r or "combined" in r for r in flags[3]["reasons"])
    assert not any(flags[p]["flagged"] for p in range(10) if p != 3)
    strict = quality_flags(values, _rules(signals={"time": {"min": 0.2}, "catch": {"min": 0.95}}))
    assert any(r.startswith("time 0.05 below the study's minimum") for r in strict[3]["reasons"])
    assert any(r.startswith("catch 0.5 below") for r in strict[3]["reasons"])
    # fewer than 4 participants: no fence at all
    few = {p: {"agreement": v} for p, v in enumerate([0.5, 0.4, -3.0])}
    assert not any(v["flagged"] for v in quality_flags(few, _rules()).values())


def test_the_combined_shortfall_flags_someone_low_on_several_signals_at_once():
    g = np.random.default_rng(0)
    values = {p: {"agreement": g.normal(0, 0.05), "specificity": g.normal(0.4, 0.05), "time": math.exp(g.normal(0, 0.3)),
                  "touched": math.exp(g.normal(-3, 0.2))} for p in range(200)}
    # about 2.5 robust z below the median on all four: inside every single fence (about 4.7 sd)
    values["lazy"] = {"agreement": -0.125, "specificity": 0.275, "time": math.exp(-0.75), "touched": math.exp(-3.5)}
    flags = quality_flags(values, _rules())
    assert not [r for r in flags["lazy"]["reasons"] if not r.startswith("combined")]
    assert flags["lazy"]["flagged"] and flags["lazy"]["combined"] < -8
    assert sum(v["flagged"] for p, v in flags.items() if p != "lazy") <= 1
    off = quality_flags(values, _rules(signals={"combined": {"fence": None}}))
    assert not off["lazy"]["flagged"]


def test_rules_are_validated_by_field():
    for raw, field in [({"iqr_multiplier": 0}, "quality.iqr_multiplier"), ({"action": "ban"}, "quality.action"),
                       ({"signals": {"mood": {}}}, "quality.signals.mood"),
                       ({"signals": {"time": {"fence": "up"}}}, "quality.signals.time.fence"),
                       ({"signals": {"time": {"min": "1"}}}, "quality.signals.time.min"), ({"x": 1}, "quality.x")]:
        with pytest.raises(QualityRulesInvalid) as caught:
            quality_rules_clean(raw)
        assert caught.value.field == field


@pytest.mark.slow
def test_quality_bench_meets_its_targets_on_a_reduced_run():
    """bench/quality.py, one seed: every random, centre-only and copying participant flagged, precision
    >= 0.9, maps no worse after excluding the flagged, and few honest flags in a centre-biased study."""
    sys.path.insert(0, str(ROOT))
    from bench import quality

    args = quality.parser().parse_args(["--seed", "1"])
    result = quality.run_seed(1, args)
    for kind in ("random", "centre", "copy"):
        assert result["kinds"][kind]["caught"] == result["kinds"][kind]["count"] > 0, kind
    assert result["kinds"]["minimal"]["caught"] >= result["kinds"]["minimal"]["count"] - 1
    assert result["precision"] >= 0.9
    assert result["accuracy_after"] >= result["accuracy_before"]
    assert result["false_flag_rate"] <= 0.02
