"""Reads for the participant side."""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.db.models import QuerySet

from studyserver.errors import Conflict, NotFound

from .models import Participant, Response, Stimulus, StimulusRole, Study, Trial
from .practice import PRACTICE_HEIGHT, PRACTICE_LABEL, PRACTICE_WIDTH, practice_region
from .task_params import task_params_resolve, trial_geometry

# Statuses a study's public link answers for. A study never launched (a draft) is not public: its
# link answers exactly as an unknown slug does, so unpublished titles and slugs cannot be read.
PUBLIC_STATUSES = (Study.Status.LIVE, Study.Status.PAUSED, Study.Status.CLOSED)


def study_public_get(*, slug: str) -> Study:
    """A launched study (live, paused or closed) by its slug; NotFound, with the same message, for an
    unknown slug and for a study never launched."""
    study = Study.objects.filter(slug=slug, status__in=PUBLIC_STATUSES).first()
    if study is None:
        raise NotFound(f"no study {slug!r}")
    return study


def responses_included(*, study: Study | None = None, studies=None, stimulus: Stimulus | None = None,
                       task_kind: str | None = None) -> QuerySet[Response]:
    """The responses that count in maps, scores, progress and exports: answered (trial done), to a
    main stimulus, by a participant not excluded; narrowed to a study (or several), a stimulus and a
    task kind when given. The one definition of "included"."""
    responses = Response.objects.filter(trial__status=Trial.Status.DONE, trial__stimulus__role=StimulusRole.MAIN).exclude(
        trial__participant__status=Participant.Status.EXCLUDED
    )
    if study is not None:
        responses = responses.filter(trial__stimulus__study=study)
    if studies is not None:
        responses = responses.filter(trial__stimulus__study__in=studies)
    if stimulus is not None:
        responses = responses.filter(trial__stimulus=stimulus)
    if task_kind is not None:
        responses = responses.filter(trial__task_kind=task_kind)
    return responses


ALREADY_IN_PROGRESS = ("This study is already in progress for this id in another browser. Please continue it "
                       "in the browser where you first agreed to take part.")


def resume_proven(participant: Participant, *, resume_token: str = "", external_session_id: str = "") -> bool:
    """Whether a request proves it comes from `participant`: it holds their token (the resume cookie
    the consent set in their browser, or the token an API client keeps), or it brings the recruiter's
    session id (Prolific's SESSION_ID) stored at their consent, when one was stored. An external id
    alone proves nothing: ids are known to others or guessable (sequential lab ids). Constant time."""
    if resume_token and hmac.compare_digest(resume_token.encode(), participant.token.encode()):
        return True
    stored = participant.external_session_id
    return bool(stored and external_session_id) and hmac.compare_digest(external_session_id.encode(), stored.encode())


def participant_resume_get(*, study: Study, external_id: str | None, resume_token: str = "",
                           external_session_id: str = "") -> Participant | None:
    """The participant of `study` who already holds `external_id`, when the request proves it is them
    (`resume_proven`); None when no one holds it. Conflict `already_in_progress` otherwise: the
    answer names no token and no data of that participant, whatever their status."""
    external_id = (external_id or "").strip()[:128]
    if not external_id:
        return None
    existing = Participant.objects.select_related("study").filter(study=study, external_id=external_id).first()
    if existing is None:
        return None
    if not resume_proven(existing, resume_token=resume_token, external_session_id=external_session_id):
        raise Conflict(ALREADY_IN_PROGRESS, code="already_in_progress")
    return existing


def participant_by_resume_token(*, study: Study, token: str) -> Participant | None:
    """The participant of `study` whose token the browser's resume cookie holds, or None."""
    if not token:
        return None
    return Participant.objects.select_related("study").filter(study=study, token=token).first()


def participant_by_token(*, token: str) -> Participant:
    participant = Participant.objects.select_related("study").filter(token=token).first() if token else None
    if participant is None:
        raise NotFound("unknown participant token")
    return participant


def catch_planned(study: Study, n_catch: int | None = None) -> int:
    """Catch trials each participant is meant to answer: catch.per_participant, at most every catch
    stimulus of the study (`n_catch`, counted when not given)."""
    if n_catch is None:
        n_catch = getattr(study, "_catch_count", None)  # counted once per loaded study (one request)
        if n_catch is None:
            n_catch = study._catch_count = Stimulus.objects.filter(study=study, role=StimulusRole.CATCH).count()
    per = task_params_resolve(study.task_params)["catch"]["per_participant"]
    return n_catch if per is None else min(per, n_catch)


def participant_progress(*, participant: Participant) -> dict:
    """Trials answered and the number planned (K main + the catch trials), practice not counted."""
    done = participant.trials.filter(status=Trial.Status.DONE).count()
    total = participant.study.stimuli_per_participant + catch_planned(participant.study)
    return {"done": done, "total": max(total, done)}


def participant_closed_early(*, participant: Participant) -> bool:
    """Whether the study closed under this participant: closed while they were still taking part.
    They stay `active` (they did not complete it); nothing more of theirs is stored."""
    return participant.status == Participant.Status.ACTIVE and participant.study.status == Study.Status.CLOSED


def trial_rendition_name(*, token: str, trial_id: int) -> str:
    """The stored file name of one of the participant's own trial pictures, in one query (the image
    endpoint is the most called one: a picture per trial)."""
    name = (Trial.objects.filter(pk=trial_id, participant__token=token).values_list("stimulus__rendition", flat=True)
            .first()) if token else None
    if name is None:
        if not Participant.objects.filter(token=token).exists():
            raise NotFound("unknown participant token")
        raise NotFound(f"trial {trial_id} is not one of this participant's trials")
    return name


def class_label_short(class_name: str) -> str:
    """'tabby, tabby cat' -> 'tabby': the first synonym, for showing to participants."""
    return class_name.split(",")[0].strip()


def needs_calibration(*, participant: Participant) -> bool:
    return task_params_resolve(participant.study.task_params)["units"] == "deg" and not participant.calibration


def trial_geometry_get(*, participant: Participant, width: int, height: int) -> dict:
    """Display size (CSS px) and the task's parameters (stimulus px, ms) for this participant's kind
    on a width x height stimulus (annotations.task_params.trial_geometry)."""
    resolved = task_params_resolve(participant.study.task_params)
    px_per_cm = (participant.calibration or {}).get("px_per_cm")
    if resolved["units"] == "deg" and not px_per_cm:
        raise Conflict("calibrate the screen first: this study sets sizes in degrees", code="calibration_required")
    return trial_geometry(resolved, participant.task_kind, width, height, px_per_cm=px_per_cm)


@dataclass(frozen=True)
class Practice:
    """The practice trial: the study's first practice-role stimulus, or the built-in example image."""

    stimulus: Stimulus | None
    width: int
    height: int
    label: str
    region: dict | None


def practice_get(*, participant: Participant) -> Practice:
    stimulus = participant.study.stimuli.filter(role=StimulusRole.PRACTICE).order_by("id").first()
    if stimulus is None:
        return Practice(None, PRACTICE_WIDTH, PRACTICE_HEIGHT, PRACTICE_LABEL, practice_region())
    return Practice(stimulus, stimulus.width, stimulus.height, class_label_short(stimulus.class_name) or stimulus.name,
                    stimulus.known_region)


def completion_code_get(*, participant: Participant) -> str | None:
    """The study's completion code; excluded participants get catch.failed_code when the study set one.
    None for a participant the study closed under before they answered any trial (main or catch:
    the two look alike to them): they did no work to be paid for, and are asked to return the study."""
    study = participant.study
    if participant.status == Participant.Status.EXCLUDED:
        failed = task_params_resolve(study.task_params)["catch"]["failed_code"]
        if failed:
            return failed
    if participant_closed_early(participant=participant) and not participant.trials.filter(status=Trial.Status.DONE).exists():
        return None
    return study.completion_code
