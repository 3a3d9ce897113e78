"""Writes for reliability: per-stimulus human ceilings, floors and reliability curves of a study.

A map change calls `reliability_request`, which bumps the study's request counter and queues
`reliability_refresh` on commit. A refresh claims the run (one at a time per study and kind),
recomputes only stimuli whose inputs changed (their fingerprint: parameters, own map revision,
partners and their revisions), writes each stimulus' rows as it goes (a killed run keeps its
progress), and queues one follow-up if requests arrived meanwhile. Seeded: the same data and
parameters give the same numbers.

Floor partners: the eligible stimuli (n >= 2) of the kind in a seeded random ring; a stimulus'
partners are the next `partners` stimuli on the ring that are not a variant of the same source image.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from datetime import timedelta

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.models import Stimulus, StimulusRole, Study
from studyserver.queueing import enqueue_coalesced_on_commit

from ..models import HumanCeiling, HumanMap, ReliabilityRun
from ..scoring import ALL_METRICS, MAP_METRICS
from ..selectors import response_map
from ..split_half import ParticipantStack, ceiling_and_floor, reliability_curve

log = logging.getLogger(__name__)
RELIABILITY_TASK = "analysis.tasks.reliability_refresh"  # queued by name (tasks.py imports these services)

DEFAULT_PARAMS = {"repetitions": 20, "curve_repetitions": 10, "partners": 3, "seed": 0, "curve_metrics": ["pcc", "sim"]}
KIND_CODES = {"paint": 1, "bubble": 2, "mouse": 3}
# A RUNNING run older than this is taken to be dead (its worker was killed) and may be taken over.
RUN_STALE_AFTER = timedelta(hours=2)


def reliability_request(*, study_id: int, task_kind: str) -> None:
    """Ask for the study's reliability to be brought up to date (collapses with other requests)."""

    run, _ = ReliabilityRun.objects.get_or_create(study_id=study_id, task_kind=task_kind, defaults={"params": DEFAULT_PARAMS})
    ReliabilityRun.objects.filter(pk=run.pk).update(requested=F("requested") + 1)
    enqueue_coalesced_on_commit(RELIABILITY_TASK, study_id, task_kind)


@transaction.atomic
def _claim(study_id: int, task_kind: str, force: bool) -> tuple[ReliabilityRun, int] | None:
    run, _ = ReliabilityRun.objects.get_or_create(study_id=study_id, task_kind=task_kind, defaults={"params": DEFAULT_PARAMS})
    run = ReliabilityRun.objects.select_for_update().get(pk=run.pk)
    now = timezone.now()
    if run.status == ReliabilityRun.Status.RUNNING and run.started_at and now - run.started_at < RUN_STALE_AFTER:
        return None  # the running one follows up on requests that arrive meanwhile
    if run.computed >= run.requested and not force:
        return None
    if force and run.requested == run.computed:
        run.requested += 1
    run.status, run.started_at, run.error = ReliabilityRun.Status.RUNNING, now, ""
    run.save(update_fields=["status", "started_at", "error", "requested"])
    return run, run.requested


def _stack(human_map: HumanMap) -> ParticipantStack:
    stimulus = human_map.stimulus
    responses = [c.response for c in human_map.contributions.select_related("response").order_by("sequence")]
    pmaps = [response_map(r, stimulus, human_map.recipe) for r in responses]
    maps = np.stack([p.density for p in pmaps]) if pmaps else np.zeros((0, stimulus.height, stimulus.width))
    fixations = None
    if pmaps and pmaps[0].fixations is not None:
        fixations = np.stack([p.fixations for p in pmaps]).astype(np.float32)
    return ParticipantStack(maps, fixations)


class _StackCache:
    """The last few stimuli's participant stacks (a stimulus and its partners are loaded together)."""

    def __init__(self, size: int):
        self.size, self.items = size, OrderedDict()

    def get(self, human_map: HumanMap) -> ParticipantStack:
        if human_map.pk in self.items:
            self.items.move_to_end(human_map.pk)
        else:
            self.items[human_map.pk] = _stack(human_map)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return self.items[human_map.pk]


def floor_partners(maps: list[HumanMap], *, partners: int, seed: int) -> dict[int, list[HumanMap]]:
    """Stimulus id -> its floor partners (see the module docstring)."""
    eligible = sorted((m for m in maps if m.n_participants >= 2), key=lambda m: m.stimulus_id)
    ring = [eligible[i] for i in np.random.default_rng([seed, 7]).permutation(len(eligible))]
    position = {m.stimulus_id: i for i, m in enumerate(ring)}
    chosen = {}
    for human_map in maps:
        root = human_map.stimulus.source_id or human_map.stimulus_id
        start = position.get(human_map.stimulus_id, -1)
        picks = []
        for step in range(1, len(ring) + 1):
            other = ring[(start + step) % len(ring)]
            if len(picks) == partners:
                break
            if other.stimulus_id != human_map.stimulus_id and (other.stimulus.source_id or other.stimulus_id) != root:
                picks.append(other)
        chosen[human_map.stimulus_id] = picks
    return chosen


def _fingerprint(params: dict, human_map: HumanMap, partners: list[HumanMap]) -> str:
    key = [params, human_map.revision, human_map.n_participants, [(p.stimulus_id, p.revision) for p in partners]]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _none_if_nan(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _stimulus_compute(human_map, partners, cache, params, fingerprint) -> None:
    own = cache.get(human_map)
    rng = np.random.default_rng([params["seed"], human_map.stimulus_id, KIND_CODES.get(human_map.task_kind, 0)])
    result = ceiling_and_floor(own, [cache.get(p) for p in partners], repetitions=params["repetitions"], rng=rng)
    curves = reliability_curve(own, repetitions=params["curve_repetitions"], rng=rng, metric_names=params["curve_metrics"])
    names = ALL_METRICS if own.fixations is not None else MAP_METRICS
    with transaction.atomic():
        HumanCeiling.objects.filter(stimulus_id=human_map.stimulus_id, task_kind=human_map.task_kind).exclude(metric__in=names).delete()
        for name in names:
            summary = result.summary(name)
            HumanCeiling.objects.update_or_create(
                stimulus_id=human_map.stimulus_id,
                task_kind=human_map.task_kind,
                metric=name,
                defaults={
                    **{k: _none_if_nan(v) for k, v in summary.items()},
                    "n_participants": own.n,
                    "repetitions": params["repetitions"],
                    "seed": params["seed"],
                    "curve": [[k, _none_if_nan(m), _none_if_nan(s), r] for k, m, s, r in curves.get(name, [])],
                    "fingerprint": fingerprint,
                },
            )


def reliability_compute(*, study: Study, task_kind: str, params: dict) -> int:
    """Bring every main stimulus' ceiling rows up to date; returns how many stimuli were computed."""
    maps = list(
        HumanMap.objects.filter(stimulus__study=study, stimulus__role=StimulusRole.MAIN, task_kind=task_kind)
        .select_related("stimulus")
        .order_by("stimulus_id")
    )
    HumanCeiling.objects.filter(stimulus__study=study, task_kind=task_kind).exclude(
        stimulus_id__in=[m.stimulus_id for m in maps if m.n_participants > 0]
    ).delete()
    partners = floor_partners(maps, partners=params["partners"], seed=params["seed"])
    current = dict(
        HumanCeiling.objects.filter(stimulus__study=study, task_kind=task_kind, metric="pcc").values_list("stimulus_id", "fingerprint")
    )
    cache, computed = _StackCache(size=params["partners"] + 2), 0
    for human_map in maps:
        if human_map.n_participants == 0:
            continue
        fingerprint = _fingerprint(params, human_map, partners[human_map.stimulus_id])
        if current.get(human_map.stimulus_id) == fingerprint:
            continue
        _stimulus_compute(human_map, partners[human_map.stimulus_id], cache, params, fingerprint)
        computed += 1
    return computed


def reliability_refresh(*, study_id: int, task_kind: str, force: bool = False) -> ReliabilityRun | None:
    """Run the study's reliability computation if it is wanted and nobody else is running it.
    Returns the finished run, or None when there was nothing to do (or another run holds it)."""

    claimed = _claim(study_id, task_kind, force)
    if claimed is None:
        return None
    run, target = claimed
    params = {**DEFAULT_PARAMS, **(run.params or {})}
    started = time.perf_counter()
    try:
        computed = reliability_compute(study=Study.objects.get(pk=study_id), task_kind=task_kind, params=params)
    except Exception as exc:
        ReliabilityRun.objects.filter(pk=run.pk).update(status=ReliabilityRun.Status.FAILED, error=f"{exc.__class__.__name__}: {exc}"[:4000])
        raise
    with transaction.atomic():
        run = ReliabilityRun.objects.select_for_update().get(pk=run.pk)
        run.computed, run.status = target, ReliabilityRun.Status.IDLE
        run.seconds, run.computed_at = time.perf_counter() - started, timezone.now()
        run.save(update_fields=["computed", "status", "seconds", "computed_at"])
        if run.requested > run.computed:
            enqueue_coalesced_on_commit(RELIABILITY_TASK, study_id, task_kind)
    log.info("reliability of study %s (%s): %d stimuli computed in %.1f s", study_id, task_kind, computed, run.seconds)
    return run


@transaction.atomic
def reliability_params_set(*, study: Study, task_kind: str, params: dict) -> ReliabilityRun:
    """Change a study's reliability parameters (repetitions, partners, seed...) and request a run."""
    from studyserver.errors import InvalidInput

    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise InvalidInput(f"unknown reliability parameters: {sorted(unknown)}")
    for key in ("repetitions", "curve_repetitions", "partners", "seed"):
        if key in params and (not isinstance(params[key], int) or isinstance(params[key], bool) or params[key] < (0 if key == "seed" else 1)):
            raise InvalidInput(f"{key} must be a positive integer", fields={key: ["invalid"]})
    run, _ = ReliabilityRun.objects.get_or_create(study=study, task_kind=task_kind, defaults={"params": DEFAULT_PARAMS})
    run.params = {**DEFAULT_PARAMS, **(run.params or {}), **params}
    run.save(update_fields=["params"])
    reliability_request(study_id=study.pk, task_kind=task_kind)
    return run


def stimuli_without_responses(*, study: Study, task_kind: str) -> list[Stimulus]:
    """Main stimuli with no included participant for the kind (reported as such)."""
    have = HumanMap.objects.filter(stimulus__study=study, task_kind=task_kind, n_participants__gt=0).values("stimulus_id")
    return list(study.stimuli.filter(role=StimulusRole.MAIN).exclude(id__in=have))
