"""Attention checks: scoring catch trials against their known region, and excluding participants.

Rules (docs/tasks.md, "Attention checks"): a paint catch trial passes when IoU(painted mask, known
region) >= catch.iou_threshold; a bubble or mouse catch trial passes when at least catch.point_fraction
of its clicks or samples fall in the region (within catch.point_tolerance_px). A participant fails
when their catch trials can no longer reach catch.pass_fraction of the planned ones, or, when they
finish, when passed / answered < catch.pass_fraction. Failing excludes them: the raw data stays,
their maps are rebuilt without them, and their slots go back to the pool.
"""
from __future__ import annotations

import math

import numpy as np
from django.db import transaction
from django.utils import timezone

from studyserver.audit.models import AuditAction
from studyserver.audit.services import audit_record
from studyserver.queueing import enqueue_on_commit

from ..models import Participant, StimulusRole, Trial
from ..regions import mask_iou, points_inside_fraction, region_mask
from ..selectors import catch_planned
from ..task_params import task_params_resolve

# Sent by name: the maps are folded above this layer (analysis).
MAP_REBUILD_TASK = "analysis.tasks.human_map_rebuild"



def catch_score(*, task_kind: str, region: dict, cleaned: dict, height: int, width: int,
                painted: np.ndarray | None = None, tolerance_px: float = 0.0) -> float:
    """Paint: IoU of the painted mask with the region; bubble/mouse: fraction of points inside it."""
    target = region_mask(region, height, width)
    if task_kind == "paint":
        return mask_iou(painted, target)
    points = cleaned["clicks"] if task_kind == "bubble" else cleaned["samples"]
    return points_inside_fraction(points, target, tolerance_px)


def catch_threshold(task_kind: str, catch_params: dict) -> float:
    return catch_params["iou_threshold"] if task_kind == "paint" else catch_params["point_fraction"]


def attention_fails(*, passed: int, answered: int, planned: int, pass_fraction: float, final: bool) -> bool:
    """True when the participant fails the attention checks.

    Early (any time): more catch trials failed than the planned number allows,
    i.e. failed > floor((1 - pass_fraction) * planned). Final (when they finish): passed / answered
    below pass_fraction (only if they answered any)."""
    failed = answered - passed
    if planned > 0 and failed > math.floor((1 - pass_fraction) * planned + 1e-9):
        return True
    return final and answered > 0 and passed / answered < pass_fraction - 1e-12


def participant_attention_check(participant: Participant, *, final: bool) -> bool:
    """Exclude the participant if they fail the attention checks; True if they were excluded now.
    The caller holds the participant's row lock."""
    if participant.status == Participant.Status.EXCLUDED:
        return False
    study = participant.study
    verdicts = list(
        participant.trials.filter(stimulus__role=StimulusRole.CATCH, status=Trial.Status.DONE).values_list("catch_passed", flat=True)
    )
    passed = sum(1 for v in verdicts if v)
    pass_fraction = task_params_resolve(study.task_params)["catch"]["pass_fraction"]
    if attention_fails(passed=passed, answered=len(verdicts), planned=catch_planned(study), pass_fraction=pass_fraction, final=final):
        participant_exclude(participant=participant, reason=f"attention checks: {passed} of {len(verdicts)} catch trials passed")
        return True
    return False


@transaction.atomic
def participant_exclude(*, participant: Participant, reason: str, actor=None) -> Participant:
    """Flag the participant as excluded (idempotent). Their raw responses stay; their open trials are
    released (EXPIRED) so the slots go back to the pool; the human map of every (stimulus, kind) they
    answered is rebuilt without them once this commits. Recorded in the audit log with `actor` (the
    researcher; None for the automatic attention checks) and the reason."""
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    if participant.status == Participant.Status.EXCLUDED:
        return participant
    participant.status = Participant.Status.EXCLUDED
    participant.excluded_at = timezone.now()
    participant.exclusion_reason = reason[:300]
    participant.save(update_fields=["status", "excluded_at", "exclusion_reason"])
    audit_record(action=AuditAction.PARTICIPANT_EXCLUDED, actor=actor, study_id=participant.study_id,
                 study_slug=participant.study.slug, target=f"participant {participant.pk}",
                 details={"reason": participant.exclusion_reason})
    participant.trials.filter(status=Trial.Status.ASSIGNED).update(status=Trial.Status.EXPIRED)
    answered = (
        participant.trials.filter(status=Trial.Status.DONE, stimulus__role=StimulusRole.MAIN)
        .values_list("stimulus_id", "task_kind")
        .distinct()
        .order_by("stimulus_id")
    )
    for stimulus_id, task_kind in answered:
        enqueue_on_commit(MAP_REBUILD_TASK, stimulus_id, task_kind)
    return participant
