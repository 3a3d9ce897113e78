"""Assigning trials to participants: N per (stimulus, task kind), K per participant, catch trials
interleaved, leases that expire. The algorithm, its invariants and why they hold: docs/assignment.md.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from studyserver.errors import Conflict

from ..models import Participant, Stimulus, StimulusRole, Study, Trial
from ..selectors import catch_planned
from ..task_params import task_params_resolve

# A trial holds its stimulus for this long; after it, the slot goes back to the pool.
TRIAL_LEASE = timedelta(minutes=30)

_random = random.SystemRandom()


def _holding(task_kind: str, now: datetime) -> Q:
    """Trials (seen from a stimulus) holding one of its N slots of this kind: answered (DONE) or
    assigned with a lease still running, of participants who are not excluded."""
    live = Q(trials__status=Trial.Status.DONE) | Q(trials__status=Trial.Status.ASSIGNED, trials__lease_expires_at__gt=now)
    included = Q(trials__participant__status__in=[Participant.Status.ACTIVE, Participant.Status.COMPLETED])
    return Q(trials__task_kind=task_kind) & live & included


def main_stimuli_held(study: Study, task_kind: str, now: datetime) -> list[tuple[int, int | None, int]]:
    """(stimulus id, source id, slots held) of every main stimulus of the study, in one query."""
    return list(
        Stimulus.objects.filter(study=study, role=StimulusRole.MAIN)
        .annotate(held=Count("trials", filter=_holding(task_kind, now)))
        .values_list("id", "source_id", "held")
    )


def free_slots(study: Study, task_kind: str, now: datetime) -> int:
    """Slots of this kind not held by anyone: sum over main stimuli of N - held."""
    return sum(study.participants_per_stimulus - held for _, _, held in main_stimuli_held(study, task_kind, now))


class _Full(Exception):
    """Raised inside a savepoint to give a stimulus' row lock back (it was full after all)."""


def _slot_take(participant: Participant, stimulus_id: int, n: int, now: datetime, *, position: int, wait: bool) -> Trial | None:
    """Take one of the stimulus' N slots under its row lock (the per-stimulus allocation lock), or
    None: locked by another allocation (when not waiting), or full. Inside a savepoint, so a full or
    locked stimulus' lock is given back at once and no transaction holds two stimulus locks.
    Under the lock: its held slots and its run-out leases are counted in one query. If any lease ran
    out, those trials are marked EXPIRED (the UPDATE waits on a submit holding the trial's row lock
    and re-checks its status, so a trial answered at the last moment stays DONE and keeps its slot)
    and the slots are counted again. Then the trial is created."""
    try:
        with transaction.atomic():
            stimulus = Stimulus.objects.select_for_update(skip_locked=not wait).filter(pk=stimulus_id).first()
            if stimulus is None:
                return None
            held, run_out = _slots_count(stimulus_id, participant.task_kind, now)
            if run_out:
                Trial.objects.filter(stimulus_id=stimulus_id, status=Trial.Status.ASSIGNED, lease_expires_at__lte=now).update(
                    status=Trial.Status.EXPIRED)
                held, _ = _slots_count(stimulus_id, participant.task_kind, now)  # a last-moment answer keeps its slot
            if held >= n:
                raise _Full
            return Trial.objects.create(participant=participant, stimulus=stimulus, task_kind=participant.task_kind,
                                        position=position, lease_expires_at=now + TRIAL_LEASE)
    except _Full:
        return None


def _slots_count(stimulus_id: int, task_kind: str, now: datetime) -> tuple[int, int]:
    """(slots held, run-out leases still marked ASSIGNED) of one stimulus, in one query."""
    counts = Stimulus.objects.filter(pk=stimulus_id).aggregate(
        held=Count("trials", filter=_holding(task_kind, now)),
        run_out=Count("trials", filter=Q(trials__status=Trial.Status.ASSIGNED, trials__lease_expires_at__lte=now)))
    return counts["held"], counts["run_out"]


def _main_trial_assign(participant: Participant, held: dict[int, int], n: int, now: datetime, position: int) -> Trial | None:
    """The candidates (fewest slots held first, random among equals, as counted without a lock) are
    tried in turn: first skipping those another allocation has locked, then waiting for those. The
    count that decides is the one taken under the stimulus' lock."""
    order = sorted(held, key=lambda s: (held[s], _random.random()))
    skipped = []
    for stimulus_id in order:
        trial = _slot_take(participant, stimulus_id, n, now, position=position, wait=False)
        if trial is not None:
            return trial
        skipped.append(stimulus_id)
    for stimulus_id in skipped:  # all of them were locked or full: wait for the locked ones
        trial = _slot_take(participant, stimulus_id, n, now, position=position, wait=True)
        if trial is not None:
            return trial
    return None


def _open_trial_resume(trial_id: int, now: datetime) -> Trial:
    trial = Trial.objects.select_related("stimulus", "participant").get(pk=trial_id)
    trial.lease_expires_at = now + TRIAL_LEASE
    trial.served_count += 1
    trial.save(update_fields=["lease_expires_at", "served_count"])
    return trial


@transaction.atomic
def trial_next_assign(*, participant: Participant) -> Trial | None:
    """The participant's open trial (lease renewed), or a newly assigned one; None when they are done.

    Lock order everywhere: participant -> stimulus -> trial (a submit takes participant -> trial, a
    consent the study alone), so no two requests wait on each other in a cycle.
    1. Under the participant's row lock: not active (completed, excluded) or the study
       closed -> None; an open (ASSIGNED)
       trial is returned again, its lease renewed: a reload resumes it.
    2. Allocation is serialised per *stimulus* by its row lock (`_slot_take`): two participants taking
       different stimuli never wait on each other; one holding a stimulus makes the others skip to
       their next candidate (SKIP LOCKED). Under the lock, that stimulus' run-out leases are marked
       EXPIRED and its slots counted again; that count decides.
    3. m = K - main trials answered, c = catch trials still planned (and available to this participant).
       If m > 0 but no main stimulus is available to them -> None (the study has no more for them).
       Otherwise a catch trial comes next with probability c / (m + c), which places the catch trials
       uniformly at random among the trials; else a main stimulus.
    4. A main stimulus is one they have not seen, whose source image they have not seen in another
       condition, holding fewer than N slots (DONE + live leases of non-excluded participants, for
       their task kind); chosen at random among those with the fewest slots held, so stimuli fill
       evenly and each participant's order is random.
    Raises Conflict(calibration_required) for a study with sizes in degrees before the screen calibration.
    """
    closed = participant.study.status == Study.Status.CLOSED  # no open trial is resumed once closed
    participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
    if participant.status != Participant.Status.ACTIVE or closed:
        return None
    mine = list(participant.trials.values_list("id", "stimulus_id", "stimulus__source_id", "stimulus__role", "status"))
    open_ids = [trial_id for trial_id, _, _, _, status in mine if status == Trial.Status.ASSIGNED]
    if open_ids:
        return _open_trial_resume(min(open_ids), timezone.now())
    study = participant.study  # read with the lock above: its status is current
    now = timezone.now()
    if study.status == Study.Status.PAUSED:
        raise Conflict(
            "The study is paused by the researchers. Please keep this page open: it continues by itself "
            "when the study resumes.",
            code="study_paused",
        )
    if study.status != Study.Status.LIVE:
        return None
    if task_params_resolve(study.task_params)["units"] == "deg" and not participant.calibration:
        raise Conflict("calibrate the screen first: this study sets sizes in degrees", code="calibration_required")
    seen = {stimulus_id for _, stimulus_id, _, _, _ in mine}
    seen_sources = {source_id or stimulus_id for _, stimulus_id, source_id, _, _ in mine}
    answered = [role for _, _, _, role, status in mine if status == Trial.Status.DONE]
    main_left = study.stimuli_per_participant - answered.count(StimulusRole.MAIN)
    catch_ids = list(Stimulus.objects.filter(study=study, role=StimulusRole.CATCH).values_list("id", flat=True))
    catch_pool = [stimulus_id for stimulus_id in catch_ids if stimulus_id not in seen]
    catch_left = min(max(catch_planned(study, len(catch_ids)) - answered.count(StimulusRole.CATCH), 0), len(catch_pool))
    if main_left > 0:
        held = {
            stimulus_id: n
            for stimulus_id, source_id, n in main_stimuli_held(study, participant.task_kind, now)
            if stimulus_id not in seen and (source_id or stimulus_id) not in seen_sources
            and n < study.participants_per_stimulus
        }
        if not held:
            return None
    elif catch_left == 0:
        return None
    if _random.random() < catch_left / (max(main_left, 0) + catch_left):
        stimulus_id = _random.choice(catch_pool)  # catch stimuli have no N: no slot to take
        return Trial.objects.create(participant=participant, stimulus_id=stimulus_id, task_kind=participant.task_kind,
                                    position=len(mine), lease_expires_at=now + TRIAL_LEASE)
    trial = _main_trial_assign(participant, held, study.participants_per_stimulus, now, len(mine))
    if trial is None and catch_left > 0:  # every main stimulus filled up meanwhile: the catch trials remain
        stimulus_id = _random.choice(catch_pool)
        return Trial.objects.create(participant=participant, stimulus_id=stimulus_id, task_kind=participant.task_kind,
                                    position=len(mine), lease_expires_at=now + TRIAL_LEASE)
    return trial
