"""The reliability allocation policy on constructed stimuli: the order, saturation, max, budget, groups."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from annotations.allocation_policy import (
    AllocationInvalid,
    StimulusSlots,
    allocation_clean,
    allocation_order,
    committed,
    projected_lower,
    slot_open,
    stimulus_state,
)
from annotations.task_params import TaskParamsInvalid

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = allocation_clean({"mode": "reliability", "target": 0.9, "min": 5, "max": 8, "budget": 1000})


def slot(i, held, lower=None, *, answered=None, lower_n=None, group=None, kind=""):
    answered = held if answered is None else answered
    return StimulusSlots(i, i if group is None else group, held, answered, lower,
                         answered if lower_n is None else lower_n, kind)


def test_settings_default_to_exactly_n_and_validate_by_field():
    assert allocation_clean(None) == {"mode": "exact"} == allocation_clean({})
    assert SETTINGS == {"mode": "reliability", "metric": "pcc", "target": 0.9, "min": 5, "max": 8, "budget": 1000,
                        "splits": 10}
    bad = [
        ({"mode": "reliability", "target": 1.0, "min": 5, "max": 8, "budget": 10}, "allocation.target"),
        ({"mode": "reliability", "target": 0.9, "min": 1, "max": 8, "budget": 10}, "allocation.min"),
        ({"mode": "reliability", "target": 0.9, "min": 5, "max": 4, "budget": 10}, "allocation.max"),
        ({"mode": "reliability", "target": 0.9, "min": 5, "max": 8, "budget": True}, "allocation.budget"),
        ({"mode": "reliability", "target": 0.9, "min": 5, "max": 8, "budget": 10, "metric": "kld"}, "allocation.metric"),
        ({"mode": "reliability", "target": 0.9, "min": 5, "max": 8, "budget": 10, "splits": 500}, "allocation.splits"),
        ({"mode": "reliability", "target": 0.9, "min": 5, "max": 8, "budget": 10, "n": 3}, "allocation.n"),
        ({"mode": "exact", "budget": 10}, "allocation.budget"),
        ({"mode": "greedy"}, "allocation.mode"),
    ]
    for raw, field in bad:
        with pytest.raises(AllocationInvalid) as caught:
            allocation_clean(raw)
        assert caught.value.field == field, raw
    assert issubclass(AllocationInvalid, TaskParamsInvalid)


def test_every_stimulus_gets_min_first_fewest_first():
    stimuli = [slot(0, 7, 0.1), slot(1, 2, None), slot(2, 4, 0.99), slot(3, 0)]
    order = allocation_order(stimuli, SETTINGS)
    # below min (5) come first, lowest level first, whatever their reliability; then the rest
    assert order == [3, 1, 2, 0]


def test_after_min_the_least_reliable_comes_first_and_an_unestimated_map_counts_as_least():
    stimuli = [slot(0, 6, 0.7), slot(1, 6, 0.2), slot(2, 5, 0.85), slot(3, 6, None), slot(4, 6, float("nan"))]
    order = allocation_order(stimuli, SETTINGS)
    assert order[:2] in ([3, 4], [4, 3]) and order[2:] == [1, 0, 2]


def test_saturated_stimuli_are_not_handed_out_and_an_exclusion_reopens_them():
    saturated = slot(0, 6, 0.95)
    assert stimulus_state(saturated, SETTINGS) == "saturated"
    assert allocation_order([saturated, slot(1, 6, 0.5)], SETTINGS) == [1]
    # a participant excluded since: 5 included answers left, the estimate was taken on 6
    reopened = slot(0, 5, 0.95, answered=5, lower_n=6)
    assert stimulus_state(reopened, SETTINGS) == "open"
    assert allocation_order([reopened], SETTINGS) == [0]
    # an estimate that reached the target below min does not saturate
    early = slot(0, 4, 0.99)
    assert stimulus_state(early, SETTINGS) == "filling" and allocation_order([early], SETTINGS) == [0]
    # more answers than the estimate saw (a fold still queued) keep it saturated
    assert stimulus_state(slot(0, 7, 0.95, answered=7, lower_n=6), SETTINGS) == "saturated"


def test_no_stimulus_exceeds_max():
    capped = slot(0, 8, 0.1)
    assert stimulus_state(capped, SETTINGS) == "capped"
    assert allocation_order([capped, slot(1, 7, 0.5)], SETTINGS) == [1]
    assert not slot_open(0, [capped, slot(1, 7, 0.5)], SETTINGS)


def test_the_budget_stops_everything_and_counts_every_task_kind():
    settings = {**SETTINGS, "budget": 12}
    stimuli = [slot(0, 5, 0.3, kind="paint"), slot(1, 6, 0.3, kind="bubble")]
    assert committed(stimuli) == 11
    assert allocation_order(stimuli, settings, task_kind="paint") == [0]
    full = [slot(0, 6, 0.3, kind="paint"), slot(1, 6, 0.3, kind="bubble")]
    assert allocation_order(full, settings, task_kind="paint") == []
    assert allocation_order(full, settings, task_kind="bubble") == []
    assert not slot_open(0, full, settings)


def test_conditions_of_one_source_stay_paired():
    settings = {**SETTINGS, "budget": 100}
    # three conditions of source 10, one of them one participant ahead: the other two come first
    group = [slot(1, 6, 0.2, group=10), slot(2, 5, 0.1, group=10), slot(3, 5, 0.3, group=10)]
    other = [slot(4, 5, 0.0)]
    assert allocation_order(group + other, settings) == [2, 3, 4]
    # at one level the group starts a new round only when the budget holds a whole round: 18 + 3 slots
    level = [slot(1, 6, 0.2, group=10), slot(2, 6, 0.1, group=10), slot(3, 6, 0.3, group=10)]
    assert allocation_order(level, {**settings, "budget": 21}) == [2, 1, 3]
    assert allocation_order(level, {**settings, "budget": 20}) == []
    # nobody sees two conditions of one source
    assert allocation_order(level, {**settings, "budget": 21}, seen_groups={10}) == []
    # the group saturates only when every condition has; then nothing more is given to it
    one_left = [slot(1, 6, 0.95, group=10), slot(2, 6, 0.5, group=10), slot(3, 6, 0.93, group=10)]
    assert allocation_order(one_left, settings) == [2, 3, 1]
    done = [slot(1, 6, 0.95, group=10), slot(2, 6, 0.91, group=10), slot(3, 6, 0.93, group=10)]
    assert allocation_order(done, settings) == []
    # an exclusion in one condition puts it behind: it is refilled first, saturated group or not
    behind = [slot(1, 6, 0.95, group=10), slot(2, 5, 0.91, answered=5, lower_n=6, group=10),
              slot(3, 6, 0.93, group=10)]
    assert allocation_order(behind + other, settings) == [2, 4]


def test_the_order_is_a_function_of_the_inputs_and_the_seed():
    stimuli = [slot(i, 5, 0.5) for i in range(30)]  # all tied
    a = allocation_order(stimuli, SETTINGS, seed=7)
    assert a == allocation_order(list(reversed(stimuli)), SETTINGS, seed=7)
    assert a != allocation_order(stimuli, SETTINGS, seed=8)
    assert sorted(a) == list(range(30))


def test_projection_of_the_bound_to_the_slots_held():
    # two leases in flight on a map estimated at n = 6: Spearman-Brown with k = 8 / 6
    r, k = 0.6, 8 / 6
    assert projected_lower(slot(0, 8, r, answered=6, lower_n=6)) == pytest.approx(k * r / (1 + (k - 1) * r))
    assert projected_lower(slot(0, 6, r)) == r
    assert projected_lower(slot(0, 6, None)) == float("-inf")
    assert projected_lower(slot(0, 8, -0.2, answered=6, lower_n=6)) == -0.2
    # the leases make a stimulus look less in need than an equally reliable one without them
    assert allocation_order([slot(0, 8, r, answered=6, lower_n=6), slot(1, 6, r)], {**SETTINGS, "max": 20}) == [1, 0]


def test_exact_mode_is_not_decided_here():
    with pytest.raises(ValueError):
        allocation_order([slot(0, 1)], {"mode": "exact"})


def test_pure_cores_import_no_django():
    code = ("import sys, importlib; [importlib.import_module(m) for m in ('annotations.allocation_policy', "
            "'analysis.saturation', 'analysis.quality')]; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery')]; "
            "assert not bad, bad")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
