"""The reliability estimate (split-half, Spearman-Brown to n) and the allocation decisions taken on it."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis import metrics
from analysis.saturation import (
    saturation_decision,
    saturation_estimate,
    saturation_replay,
    spearman_brown,
    split_seed,
)
from annotations.allocation_policy import StimulusSlots, allocation_clean, allocation_order

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = allocation_clean({"mode": "reliability", "target": 0.9, "min": 5, "max": 20, "budget": 1000, "splits": 10})


def _blob(size=24, centre=(8.0, 12.0), sigma=3.0):
    axis = np.arange(size) + 0.5
    xs, ys = np.meshgrid(axis, axis)
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))


def _participants(n, noise, seed, size=24):
    """n participants' maps: one true blob plus noise of the given amplitude (0: all identical)."""
    g = np.random.default_rng(seed)
    return [np.clip(_blob(size) + noise * g.random((size, size)), 0, None) for _ in range(n)]


def test_spearman_brown_projects_a_half_to_the_whole():
    assert spearman_brown(0.5, 2) == pytest.approx(2 * 0.5 / 1.5)
    assert spearman_brown(0.6, 1) == pytest.approx(0.6)
    assert spearman_brown(0.6, 7 / 3) == pytest.approx((7 / 3) * 0.6 / (1 + (4 / 3) * 0.6))
    assert spearman_brown(1.0, 3) == 1.0
    assert spearman_brown(float("nan"), 2) == -1.0  # an undefined split counts as the lowest value
    assert spearman_brown(-0.9, 2) == -1.0  # below -1 is clipped


@pytest.mark.parametrize("n", [6, 7])
def test_each_split_is_two_disjoint_halves_of_n_over_2_projected_with_k_n_over_m(n):
    maps = _participants(n, 2.0, seed=n)
    ids = [100 + 3 * i for i in range(n)]
    est = saturation_estimate(maps, ids, key="s:1:bubble", metric="pcc", splits=8)
    # the splits, redrawn from the documented seed: half m = n // 2, the (n odd) last one sits out
    rng = np.random.default_rng(split_seed("s:1:bubble", ids))
    m = n // 2
    k = n / m
    expected = []
    for _ in range(8):
        perm = rng.permutation(n)
        a = np.mean([maps[i] for i in sorted(perm[:m])], axis=0)
        b = np.mean([maps[i] for i in sorted(perm[m: 2 * m])], axis=0)
        r = metrics.pcc(a, b)
        expected.append(k * r / (1 + (k - 1) * r))
    assert est.values == pytest.approx(expected, abs=1e-12)
    assert est.reliability == pytest.approx(np.mean(expected))
    assert est.lower == pytest.approx(np.percentile(expected, 10))
    assert est.n == n and est.response_ids == tuple(ids) and est.lower <= est.reliability


def test_the_estimate_does_not_depend_on_the_order_of_the_maps():
    maps = _participants(9, 1.5, seed=3)
    ids = list(range(40, 49))
    order = np.random.default_rng(0).permutation(9)
    a = saturation_estimate(maps, ids, key="k", metric="spearman", splits=6)
    b = saturation_estimate([maps[i] for i in order], [ids[i] for i in order], key="k", metric="spearman", splits=6)
    assert a == b
    # another stimulus (key) draws other splits
    assert saturation_estimate(maps, ids, key="k2", metric="spearman", splits=6).values != a.values


def test_identical_participants_are_perfectly_reliable_and_one_participant_is_undefined():
    est = saturation_estimate(_participants(5, 0.0, seed=0), range(5), key="k", metric="pcc", splits=10)
    assert est.reliability == pytest.approx(1.0) and est.lower == pytest.approx(1.0)
    single = saturation_estimate(_participants(1, 0.5, seed=0), [1], key="k", metric="pcc", splits=10)
    assert math.isnan(single.lower) and math.isnan(single.reliability)
    assert saturation_decision(single, SETTINGS)["state"] == "open"
    assert saturation_decision(single, SETTINGS)["lower"] is None  # JSON-able: null, not NaN


def test_constant_half_maps_count_as_unreliable_not_as_an_error():
    maps = [np.zeros((8, 8)) for _ in range(4)]
    est = saturation_estimate(maps, range(4), key="k", metric="pcc", splits=5)
    assert est.values == (-1.0,) * 5 and est.lower == -1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        saturation_estimate(_participants(3, 1, 0), [1, 2], key="k", metric="pcc", splits=5)
    with pytest.raises(ValueError):
        saturation_estimate(_participants(3, 1, 0), [1, 1, 2], key="k", metric="pcc", splits=5)
    with pytest.raises(ValueError):
        saturation_estimate(_participants(3, 1, 0), [1, 2, 3], key="k", metric="kld", splits=5)


def test_a_decision_recomputed_from_the_responses_it_names_equals_itself():
    maps = _participants(8, 1.0, seed=5)
    ids = [11, 4, 30, 7, 19, 2, 25, 8]
    decision = saturation_decision(saturation_estimate(maps, ids, key="s:9:paint", metric="pcc", splits=10), SETTINGS)
    assert decision["response_ids"] == sorted(ids) and decision["n"] == 8
    by_id = dict(zip(ids, maps))
    assert saturation_replay(decision, by_id) == decision
    # a changed response (or a missing one) does not reproduce it
    assert saturation_replay(decision, {**by_id, 4: maps[0] * 0 + np.random.default_rng(1).random(maps[0].shape)}) != decision
    with pytest.raises(KeyError):
        saturation_replay(decision, {i: m for i, m in by_id.items() if i != 30})


def _run(streams, settings, *, exclude_after=None):
    """Participants one at a time (one trial each) through the policy; after each answer the
    stimulus is estimated again. streams[s](j) is the j-th answer's map for stimulus s.
    Returns per stimulus: the answers, the last decision."""
    answers = {s: [] for s in streams}
    lower = {s: None for s in streams}
    decisions = {}
    for step in range(10_000):
        slots = [StimulusSlots(s, s, len(a), len(a), lower[s], len(a)) for s, a in answers.items()]
        order = allocation_order(slots, settings, seed=step)
        if not order:
            return answers, decisions
        s = order[0]
        answers[s].append((1000 * s + len(answers[s]), streams[s](len(answers[s]))))
        ids, maps = zip(*answers[s])
        decisions[s] = saturation_decision(
            saturation_estimate(maps, ids, key=f"t:{s}", metric=settings["metric"], splits=settings["splits"]), settings)
        lower[s] = decisions[s]["lower"]
    raise AssertionError("the allocation never stopped")


def test_a_stable_map_saturates_at_min_and_a_noisy_one_runs_to_max():
    stable = _participants(40, 0.05, seed=1)
    noisy = [np.random.default_rng(i).random((24, 24)) for i in range(40)]
    answers, decisions = _run({0: stable.__getitem__, 1: noisy.__getitem__}, SETTINGS)
    assert len(answers[0]) == SETTINGS["min"] and decisions[0]["state"] == "saturated"
    assert decisions[0]["lower"] >= 0.9
    assert len(answers[1]) == SETTINGS["max"] and decisions[1]["state"] == "open"


def test_the_budget_stops_everything():
    noisy = {s: (lambda j, s=s: np.random.default_rng(100 * s + j).random((16, 16))) for s in range(4)}
    settings = {**SETTINGS, "budget": 27}
    answers, _ = _run(noisy, settings)
    counts = sorted(len(a) for a in answers.values())
    assert sum(counts) == 27 and counts[0] >= settings["min"] and counts[-1] <= settings["max"]


def test_an_exclusion_reopens_a_saturated_stimulus_until_it_is_reliable_again():
    maps = _participants(6, 0.05, seed=2) + [np.random.default_rng(9).random((24, 24)) * 40]
    ids = list(range(7))
    decision = saturation_decision(saturation_estimate(maps[:6], ids[:6], key="x", metric="pcc", splits=10), SETTINGS)
    assert decision["state"] == "saturated"
    # the stimulus as the policy sees it: 6 answers, saturated; nothing more is given to it
    slots = [StimulusSlots(0, 0, 6, 6, decision["lower"], decision["n"])]
    assert allocation_order(slots, SETTINGS) == []
    # one participant excluded: 5 answers left, the decision's n was 6: open again until re-estimated
    slots = [StimulusSlots(0, 0, 5, 5, decision["lower"], decision["n"])]
    assert allocation_order(slots, SETTINGS) == [0]
    # re-estimated on what is left with one wild answer among them: no longer reliable, stays open
    kept = [0, 1, 2, 3, 6]
    again = saturation_decision(saturation_estimate([maps[i] for i in kept], kept, key="x", metric="pcc", splits=10),
                                SETTINGS)
    assert again["state"] == "open" and again["lower"] < 0.9
    assert allocation_order([StimulusSlots(0, 0, 5, 5, again["lower"], again["n"])], SETTINGS) == [0]


@pytest.mark.slow
def test_allocation_bench_meets_its_targets_on_a_reduced_run(capsys):
    """bench/allocation.py on 100 images, one seed: the reliability mode's 5th percentile of PCC with
    the ground truth is at least 0.03 above exactly-N's at the same budget, its mean no more than 0.005
    below."""
    sys.path.insert(0, str(ROOT))
    from bench import allocation

    args = allocation.parser().parse_args(["--seed", "0", "--images", "100"])
    result = allocation.run_seed(0, args)
    exact, reliability = result["exact"], result["reliability"]
    assert exact["spent"] == reliability["spent"] == 2000
    assert reliability["p5"] >= exact["p5"] + 0.03
    assert reliability["mean"] >= exact["mean"] - 0.005
    assert reliability["answers_max"] <= args.max
