"""Reads for the participant side."""
from __future__ import annotations

from dataclasses import dataclass

from studyserver.errors import Conflict, NotFound

from .models import Participant, Stimulus, StimulusRole, Study, Trial
from .practice import PRACTICE_HEIGHT, PRACTICE_LABEL, PRACTICE_WIDTH, practice_region
from .task_params import task_params_resolve, trial_geometry


def study_public_get(*, slug: str) -> Study:
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        raise NotFound(f"no study {slug!r}")
    return study


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


def completion_code_get(*, participant: Participant) -> str:
    """The study's completion code; excluded participants get catch.failed_code when the study set one."""
    study = participant.study
    if participant.status == Participant.Status.EXCLUDED:
        failed = task_params_resolve(study.task_params)["catch"]["failed_code"]
        if failed:
            return failed
    return study.completion_code
