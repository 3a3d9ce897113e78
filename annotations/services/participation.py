"""Writes for taking part: consent, screen calibration, practice, response submission, completion
(keyword-only, atomic). Assignment lives in `assignment` and attention checks in `attention`; both are
re-exported here, so `participation.trial_next_assign` is the one entry point of the participant flow."""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from studyserver.errors import Conflict, Gone, InvalidInput, NotFound, PayloadTooLarge
from studyserver.queueing import enqueue_coalesced_on_commit

from .. import selectors
from ..models import Participant, Response, StimulusRole, Study, TaskKind, Trial
from ..payloads import PayloadInvalid, payload_clean
from ..payloads import PayloadTooLarge as PayloadTooLargeInvalid
from ..rasterize import paint_mask
from ..selectors import catch_planned
from ..task_params import CARD_WIDTH_CM, px_per_degree, task_params_resolve
from .assignment import TRIAL_LEASE, free_slots, trial_next_assign
from .attention import catch_score, catch_threshold, participant_attention_check, participant_exclude

# Sent by name: the maps are folded above this layer (analysis).
MAP_UPDATE_TASK = "analysis.tasks.human_map_update"

__all__ = [
    "TRIAL_LEASE", "participant_start", "participant_calibrate", "practice_submit", "trial_next_assign",
    "response_submit", "participant_finish", "participant_exclude", "response_payload_check",
]


@transaction.atomic
def participant_start(
    *,
    study: Study,
    external_id: str | None = None,
    external_study_id: str = "",
    external_session_id: str = "",
    user_agent: str = "",
    resume_token: str = "",
) -> tuple[Participant, bool]:
    """A participant who has consented. An external id (e.g. PROLIFIC_PID) already taken gets its
    participant back (resume, or their completion page), never a second one, but only with proof that
    the request is theirs (`selectors.resume_proven`: their token as `resume_token`, or the session id
    stored at their consent); without it, Conflict `already_in_progress`, whatever the study's status.
    A new participant needs a live study: paused -> Conflict `study_paused`; closed -> Gone
    `study_closed`; never launched -> Gone. The task kind is the study's kind with the fewest
    non-excluded participants among those with free slots; a study with no free slot for any kind
    takes no one (Gone `study_full`). Returns (participant, created)."""
    # Several kinds: the study's row lock serialises the balanced kind pick. One kind has nothing to
    # balance: the unique (study, external id) constraint alone keeps one participant per person and
    # slots are taken under each stimulus' lock, so consents need not queue behind one another.
    # (Task kinds are frozen once a study is live, so the caller's copy can decide.)
    rows = Study.objects.select_for_update() if len(study.task_kinds) > 1 else Study.objects
    study = rows.get(pk=study.pk)
    external_id = (external_id or "").strip()[:128] or None
    external_session_id = external_session_id[:128]
    proof = {"resume_token": resume_token, "external_session_id": external_session_id}
    existing = selectors.participant_resume_get(study=study, external_id=external_id, **proof)
    if existing:
        return existing, False
    _study_takes_newcomers_check(study)
    task_kind = _task_kind_pick(study)
    if task_kind is None:
        raise Gone(f"study {study.slug} has all the participants it needs", code="study_full")
    participant = Participant(
        study=study,
        task_kind=task_kind,
        external_id=external_id,
        external_study_id=external_study_id[:128],
        external_session_id=external_session_id,
        user_agent=user_agent[:400],
        consented_at=timezone.now(),
    )
    participant.full_clean(exclude=["token"], validate_constraints=False)
    try:
        with transaction.atomic():
            participant.save()
    except IntegrityError:  # the same id consenting twice at the same moment: the first one wins,
        existing = selectors.participant_resume_get(study=study, external_id=external_id, **proof)  # the other proves it
        if existing is None:  # not a clash of external ids after all
            raise
        return existing, False
    return participant, True


def _study_takes_newcomers_check(study: Study) -> None:
    if study.status == Study.Status.PAUSED:
        raise Conflict(f"study {study.slug} is paused by the researchers; please try again later", code="study_paused")
    if study.status == Study.Status.CLOSED:
        raise Gone(f"study {study.slug} has closed and takes no more participants", code="study_closed")
    if study.status != Study.Status.LIVE:
        raise Gone(f"study {study.slug} is not accepting participants ({study.status})")


def _study_open_check(study: Study) -> None:
    """A closed study takes nothing more from anyone (410 study_closed); its token expired with it."""
    if study.status == Study.Status.CLOSED:
        raise Gone(f"study {study.slug} is closed; nothing more is stored", code="study_closed")


def _task_kind_pick(study: Study) -> str | None:
    """Among the study's kinds with a free slot, the one with the fewest non-excluded participants
    (first listed on ties); None when every kind is full."""
    now = timezone.now()
    open_kinds = [kind for kind in study.task_kinds if free_slots(study, kind, now) > 0]
    if not open_kinds:
        return None
    counts = dict(
        study.participants.exclude(status=Participant.Status.EXCLUDED).values_list("task_kind").annotate(n=Count("id"))
    )
    return min(open_kinds, key=lambda kind: counts.get(kind, 0))


@transaction.atomic
def participant_calibrate(
    *,
    participant: Participant,
    card_width_px: float,
    dpr: float | None = None,
    screen: list[float] | None = None,
    viewport: list[float] | None = None,
) -> Participant:
    """Store the screen calibration: the on-screen width (CSS px) the participant matched to a credit
    card (8.56 cm) -> px/cm; at the study's viewing distance -> px/degree. Allowed until the first
    trial is assigned (sizes stay fixed for the whole study after that)."""
    participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
    if participant.status != Participant.Status.ACTIVE:
        raise Gone("this participant has already finished the study")
    _study_open_check(participant.study)
    if participant.trials.exists():
        raise Conflict("the screen was calibrated before the first trial; sizes stay as they are for the whole study")
    if not 100 <= card_width_px <= 4000:
        raise InvalidInput(f"card_width_px = {card_width_px} is not a plausible card width (100..4000 CSS px)",
                           fields={"card_width_px": ["out of range"]})
    distance = task_params_resolve(participant.study.task_params)["viewing_distance_cm"]
    px_per_cm = card_width_px / CARD_WIDTH_CM
    participant.calibration = {
        "card_width_px": round(card_width_px, 3),
        "card_width_cm": CARD_WIDTH_CM,
        "px_per_cm": px_per_cm,
        "viewing_distance_cm": distance,
        "px_per_degree": px_per_degree(px_per_cm, distance),
        "dpr": dpr,
        "screen": screen,
        "viewport": viewport,
        "at": timezone.now().isoformat(),
    }
    participant.save(update_fields=["calibration"])
    return participant


def response_payload_check(participant: Participant, task_kind: str, payload: Any, width: int, height: int) -> tuple[dict, np.ndarray | None]:
    """The validated payload (and the paint mask, for paint), with the study's rules for this kind;
    InvalidInput (400) or PayloadTooLarge (413) naming the field. Stores nothing: the submit, the
    practice trial and the researcher's preview all check answers with it."""
    rules = selectors.trial_geometry_get(participant=participant, width=width, height=height)["params"]
    try:
        cleaned = payload_clean(task_kind, payload, width=width, height=height, rules=rules)
        painted = None
        if task_kind == TaskKind.PAINT:  # payload_clean refused strokes over MAX_PAINT_WORK: bounded here
            painted = paint_mask(cleaned["strokes"], height, width)
            _area_check(painted, rules)
        return cleaned, painted
    except PayloadTooLargeInvalid as exc:
        raise PayloadTooLarge(str(exc), fields={exc.field: [str(exc)]}) from None
    except PayloadInvalid as exc:
        raise InvalidInput(str(exc), fields={exc.field: [str(exc)]}) from None


def _area_check(painted: np.ndarray, rules: dict) -> None:
    area = float(painted.mean())
    if area == 0:
        raise PayloadInvalid("nothing is painted; paint the parts that made you recognise the object", "strokes")
    if area < rules["min_area"]:
        raise PayloadInvalid(
            f"only {100 * area:.1f}% of the image is painted; paint at least {100 * rules['min_area']:.1f}%", "strokes"
        )
    if area > rules["max_area"]:
        raise PayloadInvalid(
            f"{100 * area:.0f}% of the image is painted; paint only the parts that made you recognise the object "
            f"(at most {100 * rules['max_area']:.0f}%)", "strokes"
        )


@transaction.atomic
def practice_submit(*, participant: Participant, payload: Any) -> Participant:
    """Check the practice trial's payload with the same rules as a real trial and record that the
    practice is done. Nothing of it is stored or analysed. Idempotent."""
    participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
    if participant.status != Participant.Status.ACTIVE:
        raise Gone("this participant has already finished the study")
    _study_open_check(participant.study)
    practice = selectors.practice_get(participant=participant)
    response_payload_check(participant, participant.task_kind, payload, practice.width, practice.height)
    if participant.practice_done_at is None:
        participant.practice_done_at = timezone.now()
        participant.save(update_fields=["practice_done_at"])
    return participant


@transaction.atomic
def response_submit(
    *,
    participant: Participant,
    trial_id: int,
    client_uuid: uuid.UUID,
    payload: Any,
    duration_ms: int | None = None,
) -> tuple[Response, bool]:
    """Store a trial's response once. A retry with the same client UUID returns the stored response
    (created False) and stores nothing new, even after the participant finished. Catch trials are
    scored against their known region; a participant failing the attention checks is excluded. Queues
    the human map update when the transaction commits."""
    participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
    trial = Trial.objects.select_for_update(of=("self",)).select_related("stimulus").filter(pk=trial_id, participant=participant).first()
    if trial is None:
        raise NotFound(f"trial {trial_id} is not one of this participant's trials")
    # Checked under the locks, so two concurrent retries of one submit store one response.
    existing = Response.objects.filter(client_uuid=client_uuid).first()
    if existing is not None:
        if existing.trial_id != trial.pk:
            raise Conflict("this client UUID was already used for another trial")
        return existing, False
    if participant.status != Participant.Status.ACTIVE:
        raise Gone("this participant has already finished the study; nothing more is stored")
    _study_open_check(participant.study)
    if trial.status == Trial.Status.DONE:
        raise Conflict(f"trial {trial_id} was already answered")
    if trial.status == Trial.Status.EXPIRED:
        raise Gone(f"trial {trial_id} expired after {TRIAL_LEASE} without an answer; its image went to someone else")
    if duration_ms is not None and not (0 <= duration_ms <= 24 * 3600 * 1000):
        raise InvalidInput("duration_ms must be between 0 and 86400000", fields={"duration_ms": ["out of range"]})
    stimulus = trial.stimulus
    cleaned, painted = response_payload_check(participant, trial.task_kind, payload, stimulus.width, stimulus.height)
    response = Response(trial=trial, client_uuid=client_uuid, payload=cleaned, duration_ms=duration_ms)
    response.full_clean(exclude=["trial", "client_uuid"])
    try:  # no savepoint: on a clash the whole submit rolls back, which is what a Conflict means here
        response.save()
    except IntegrityError:  # the same UUID sent for another trial at the same moment
        raise Conflict("this client UUID was already used for another trial") from None
    trial.status = Trial.Status.DONE
    fields = ["status"]
    if stimulus.role == StimulusRole.CATCH and stimulus.known_region:
        catch_params = task_params_resolve(participant.study.task_params)["catch"]
        trial.catch_score = catch_score(task_kind=trial.task_kind, region=stimulus.known_region, cleaned=cleaned,
                                        height=stimulus.height, width=stimulus.width, painted=painted,
                                        tolerance_px=catch_params["point_tolerance_px"])
        trial.catch_passed = trial.catch_score >= catch_threshold(trial.task_kind, catch_params)
        fields += ["catch_score", "catch_passed"]
    trial.save(update_fields=fields)
    if stimulus.role == StimulusRole.MAIN:
        enqueue_coalesced_on_commit(MAP_UPDATE_TASK, trial.stimulus_id, trial.task_kind)
    excluded = stimulus.role == StimulusRole.CATCH and participant_attention_check(participant, final=False)
    if not excluded:
        _participant_complete_if_done(participant)
    return response, True


def _participant_complete_if_done(participant: Participant) -> None:
    """Complete after K main trials and the planned catch trials."""
    done = dict(
        participant.trials.filter(status=Trial.Status.DONE).values_list("stimulus__role").annotate(n=Count("id"))
    )
    study = participant.study
    if done.get(StimulusRole.MAIN, 0) >= study.stimuli_per_participant and done.get(StimulusRole.CATCH, 0) >= catch_planned(study):
        _participant_complete(participant)


def _participant_complete(participant: Participant) -> None:
    participant.status = Participant.Status.COMPLETED
    participant.completed_at = timezone.now()
    participant.save(update_fields=["status", "completed_at"])
    participant_attention_check(participant, final=True)


@transaction.atomic
def participant_finish(*, participant: Participant) -> Participant:
    """Mark a participant complete (no more trials for them), with the final attention check; idempotent.
    A participant the study closed under is not marked complete: they stay `active` (they did not
    finish; `selectors.participant_closed_early`), and their completion page says the study closed."""
    participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(pk=participant.pk)
    if participant.status == Participant.Status.ACTIVE and participant.study.status != Study.Status.CLOSED:
        _participant_complete(participant)
        participant.refresh_from_db()
    return participant
