"""Reliability-driven allocation: which stimuli the next trial may go to, and in which order (pure Python).

A study in this mode (``{"mode": "reliability", "metric", "target", "min", "max", "budget",
"splits"}``, `allocation_clean`) hands out participants where the human maps are least reliable
instead of giving every stimulus exactly N (the default mode, ``{"mode": "exact"}``, which this
module does not decide: the assignment service does, unchanged). docs/allocation.md is the long form.

Inputs are small, one `StimulusSlots` per (stimulus, task kind): the slots it holds, the included
answers it has, and the last reliability estimate of its map (the lower bound and the n it was taken
at, `analysis.saturation`). The rules:

- Variants of one source image (its conditions) form a *group* and are allocated together: a group
  takes a new *round* (one more participant for every member) only when every member has finished the
  previous one, so every condition of a source ends with the same n and comparisons stay paired.
  A group's *level* is its members' largest held count; members below it are *behind*.
- Order of the candidates: (0) members behind their group's level (finishing a paired round), fewest
  held first; (1) groups whose level is below ``min``, lowest level first; (2) the rest, least
  reliable first: the group's smallest lower bound, Spearman-Brown projected from the n it was
  estimated at to the slots now held (an estimate not yet taken counts as least reliable). Ties are
  broken by a hash of (seed, group), so the order is a function of the inputs and the seed alone
  (not of the order they come in).
- A member is *saturated* when its estimate, taken at n >= ``min``, has a lower bound >= ``target``
  and no answer it was taken on has gone since (included answers >= that n); a group is saturated when
  every member is, and then starts no new round. Exclusion or erasure lowers the answer count below
  the estimate's n, which reopens the stimulus until its map is estimated again.
- ``max``: no stimulus holds more than ``max`` slots. ``budget``: the study's slots held by included
  participants (answers plus live leases, every task kind) never exceed it. A new round of a group
  of size g needs ``committed + g <= budget``, where ``committed`` = sum over groups of size x level,
  which bounds the held total; finishing a round never needs more than was committed for it.

A slot is held by an answered trial of an included participant or by a trial with a live lease;
excluded, withdrawn and erased participants' slots are not held, so they return to the pool.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Sequence

from .task_params import TaskParamsInvalid

MODES = ("exact", "reliability")
METRICS = ("pcc", "spearman")
SPLITS_DEFAULT = 10  # splits per estimate when the study names none (ClickMe repeats its split-half 10-100 times)
SPLITS_MAX = 200  # bounds the work of one estimate
LOWER_PERCENTILE = 10.0  # the lower bound: this percentile of the projected reliability over the splits
MAX_SLOTS = 100_000  # bounds min, max (per stimulus) and the budget (per study) to a sane size
KEYS = {"mode", "metric", "target", "min", "max", "budget", "splits"}


class AllocationInvalid(TaskParamsInvalid):
    """An allocation setting that cannot be used; `field` names it (``allocation.<key>``)."""


def _integer(raw: dict, key: str, lo: int) -> int:
    value = raw.get(key)
    field = f"allocation.{key}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise AllocationInvalid(f"{field} must be a whole number, got {value!r}", field)
    if not lo <= value <= MAX_SLOTS:
        raise AllocationInvalid(f"{field} must be between {lo} and {MAX_SLOTS}, got {int(value)}", field)
    return int(value)


def allocation_clean(raw: Any) -> dict:
    """The validated setting; raises AllocationInvalid naming the field.

    None or ``{}`` is the default, exactly-N mode: ``{"mode": "exact"}``. Reliability mode needs
    ``target`` (0 < target < 1), ``min`` (>= 2: a split-half needs two participants), ``max`` (>= min)
    and ``budget`` (>= 1); ``metric`` defaults to "pcc", ``splits`` to SPLITS_DEFAULT (2..SPLITS_MAX).
    """
    if raw is None or raw == {}:
        return {"mode": "exact"}
    if not isinstance(raw, dict):
        raise AllocationInvalid("allocation must be an object", "allocation")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise AllocationInvalid(f"allocation.{unknown[0]} is not a setting; use {sorted(KEYS)}", f"allocation.{unknown[0]}")
    mode = raw.get("mode", "exact")
    if mode not in MODES:
        raise AllocationInvalid(f"allocation.mode must be one of {list(MODES)}, got {mode!r}", "allocation.mode")
    if mode == "exact":
        extra = sorted(set(raw) - {"mode"})
        if extra:
            raise AllocationInvalid(f"allocation.{extra[0]} applies to the reliability mode only", f"allocation.{extra[0]}")
        return {"mode": "exact"}
    metric = raw.get("metric", "pcc")
    if metric not in METRICS:
        raise AllocationInvalid(f"allocation.metric must be one of {list(METRICS)}, got {metric!r}", "allocation.metric")
    target = raw.get("target")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 1:
        raise AllocationInvalid(f"allocation.target must be a number between 0 and 1 (exclusive), got {target!r}",
                                "allocation.target")
    low = _integer(raw, "min", 2)
    high = _integer(raw, "max", 2)
    if high < low:
        raise AllocationInvalid(f"allocation.max ({high}) must be at least allocation.min ({low})", "allocation.max")
    budget = _integer(raw, "budget", 1)
    splits = _integer({"splits": raw.get("splits", SPLITS_DEFAULT)}, "splits", 2)
    if splits > SPLITS_MAX:
        raise AllocationInvalid(f"allocation.splits must be at most {SPLITS_MAX}, got {splits}", "allocation.splits")
    return {"mode": "reliability", "metric": metric, "target": float(target), "min": low, "max": high,
            "budget": budget, "splits": splits}


@dataclass(frozen=True)
class StimulusSlots:
    """One (stimulus, task kind) as the policy sees it.

    group: the source image's key (the source's id for a variant, the stimulus' own id otherwise);
    held: slots held (answers of included participants plus live leases); answered: answers of
    included participants (held - answered = leases in flight); lower: the lower bound of the last
    reliability estimate (None before the first; NaN when it was undefined); lower_n: the number of
    answers that estimate was taken on.
    """

    stimulus_id: Hashable
    group: Hashable
    held: int
    answered: int
    lower: float | None = None
    lower_n: int = 0
    task_kind: str = ""


def reliability_reached(n: int, lower: float | None, settings: dict) -> bool:
    """Whether an estimate taken on n answers with this lower bound saturates the stimulus: n >= min
    and lower >= target (an undefined bound never does)."""
    return lower is not None and math.isfinite(lower) and n >= settings["min"] and lower >= settings["target"]


def stimulus_state(slot: StimulusSlots, settings: dict) -> str:
    """"saturated" (its estimate reached the target and none of its answers has gone since),
    "capped" (holds max slots), "filling" (fewer than min answers), else "open"."""
    if reliability_reached(slot.lower_n, slot.lower, settings) and slot.answered >= slot.lower_n:
        return "saturated"
    if slot.held >= settings["max"]:
        return "capped"
    return "filling" if slot.answered < settings["min"] else "open"


def projected_lower(slot: StimulusSlots) -> float:
    """The lower bound Spearman-Brown projected from the n it was estimated at to the slots held now,
    r k / (1 + (k - 1) r) with k = held / lower_n; -inf when there is no usable estimate. A negative
    bound is not projected (it stays below every non-negative one either way)."""
    r = slot.lower
    if r is None or not math.isfinite(r) or slot.lower_n < 1:
        return -math.inf
    if r <= 0 or slot.held == slot.lower_n:
        return float(r)
    k = slot.held / slot.lower_n
    return float(k * r / (1.0 + (k - 1.0) * r))


class _Group:
    """The members of one (task kind, source image), with their level (largest held count)."""

    __slots__ = ("key", "members", "level")

    def __init__(self, key: tuple, members: list[StimulusSlots]):
        self.key, self.members = key, members
        self.level = max(m.held for m in members)

    def behind(self) -> list[StimulusSlots]:
        return [m for m in self.members if m.held < self.level]


def _groups(stimuli: Iterable[StimulusSlots]) -> list[_Group]:
    by_key: dict[tuple, list[StimulusSlots]] = {}
    for slot in stimuli:
        by_key.setdefault((slot.task_kind, slot.group), []).append(slot)
    return [_Group(key, members) for key, members in by_key.items()]


def _committed(groups: Iterable[_Group]) -> int:
    return sum(len(g.members) * g.level for g in groups)


def committed(stimuli: Iterable[StimulusSlots]) -> int:
    """Slots committed to the budget: sum over groups of (members x level) >= slots held."""
    return _committed(_groups(stimuli))


def _tie(seed: int, key: tuple) -> bytes:
    """The seeded tie-break of a group: a hash of (seed, group key), the same whatever the input order."""
    return hashlib.sha256(f"{seed}|{key!r}".encode()).digest()[:8]


def _group_candidates(group: _Group, settings: dict, budget_room: int, spent: int) -> tuple[tuple, list[StimulusSlots]]:
    """(priority key, members that may take the next slot) of one group; empty list: none."""
    behind = [m for m in group.behind() if m.held < settings["max"]]
    if behind:
        if spent >= settings["budget"]:
            return (), []
        behind.sort(key=lambda m: (m.held, repr(m.stimulus_id)))
        return (0, behind[0].held), behind
    states = [stimulus_state(m, settings) for m in group.members]
    level = group.level
    if level >= settings["max"] or all(s == "saturated" for s in states) or budget_room < len(group.members):
        return (), []
    members = sorted(group.members, key=lambda m: (projected_lower(m), repr(m.stimulus_id)))
    if level < settings["min"]:
        return (1, level), members
    return (2, projected_lower(members[0])), members


def allocation_order(stimuli: Sequence[StimulusSlots], settings: dict, *, task_kind: str = "",
                     seen_groups: Iterable[Hashable] = (), seed: int = 0) -> list[Hashable]:
    """The stimulus ids of `task_kind` the next trial may go to, best first (empty: nothing to give).

    `stimuli`: every (stimulus, kind) of the study, all task kinds (the budget is the study's);
    `seen_groups`: the groups (source images) the participant has already seen, in any condition.
    Deterministic: the same inputs and seed give the same list. Callers re-check the one they take
    with `slot_open` on counts read under their locks.
    """
    if settings.get("mode") != "reliability":
        raise ValueError("allocation_order decides the reliability mode only")
    groups = _groups(stimuli)
    seen = set(seen_groups)
    room, spent = settings["budget"] - _committed(groups), sum(m.held for g in groups for m in g.members)
    ranked = []
    for group in groups:
        if group.key[0] != task_kind or group.key[1] in seen:
            continue
        key, members = _group_candidates(group, settings, room, spent)
        if members:
            ranked.append((key, _tie(seed, group.key), members))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [m.stimulus_id for _, _, members in ranked for m in members]


def slot_open(stimulus_id: Hashable, stimuli: Sequence[StimulusSlots], settings: dict) -> bool:
    """Whether `stimulus_id` may take one more slot now: `allocation_order` would offer it to a
    participant who has seen nothing. `stimuli` as for `allocation_order`, read under the locks that
    serialise the budget and the stimulus' group."""
    target = next((s for s in stimuli if s.stimulus_id == stimulus_id), None)
    if target is None:
        return False
    return stimulus_id in allocation_order(stimuli, settings, task_kind=target.task_kind)


def budget_spent(stimuli: Iterable[StimulusSlots]) -> int:
    """Slots held in all (answers of included participants plus live leases)."""
    return sum(s.held for s in stimuli)


__all__ = [
    "AllocationInvalid",
    "LOWER_PERCENTILE",
    "StimulusSlots",
    "allocation_clean",
    "allocation_order",
    "budget_spent",
    "committed",
    "projected_lower",
    "reliability_reached",
    "slot_open",
    "stimulus_state",
]
