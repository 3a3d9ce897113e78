"""Reads for researchers: which studies a user may see or change, stimuli, progress and accounts.
Scores are read by `analysis.selectors.study_scores`.

Access (decided here, used by the API and available to the dashboard):
* owner: everything, including sharing and unsharing;
* a collaborator with role "edit": reads and changes settings, stimuli and the lifecycle;
* a collaborator with role "view": reads settings, stimuli, progress and results;
* a superuser: as an owner;
* anyone else: the study does not exist for them (NotFound, 404, never 403, so slugs do not leak).
A user who can see a study but lacks the access an action needs gets PermissionDenied (403).
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotations.models import Participant, Stimulus, StimulusRole, Study, StudyShare, Trial
from annotations.selectors import responses_included
from explain.models import ExplanationJob
from explain.selectors import study_jobs
from studyserver.errors import NotFound, PermissionDenied

ACCESS_ORDER = {"view": 1, "edit": 2, "owner": 3}
RATE_WINDOW = timedelta(hours=24)


def studies_visible(*, user) -> QuerySet[Study]:
    """Studies `user` owns or that are shared with them (all of them for a superuser)."""
    studies = Study.objects.all()
    if not user.is_superuser:
        shared = StudyShare.objects.filter(study=OuterRef("pk"), user=user)
        studies = studies.filter(Q(owner=user) | Exists(shared))
    return studies.select_related("owner").annotate(n_stimuli=Count("stimuli", distinct=True)).order_by("-created_at", "-id")


def study_list(*, user, archived: bool = False) -> QuerySet[Study]:
    """The studies a list shows `user` (as `studies_visible`): those not archived, or with
    archived=True only the archived ones. An archived study stays reachable by its slug (`study_get`)."""
    return studies_visible(user=user).filter(archived_at__isnull=not archived)


def study_access(*, user, study: Study) -> str | None:
    """"owner", "edit", "view" or None."""
    if user.is_superuser or study.owner_id == user.pk:
        return "owner"
    return StudyShare.objects.filter(study=study, user=user).values_list("role", flat=True).first()


def study_get(*, user, slug: str, need: str = "view") -> Study:
    """The study if `user` has at least `need` access; NotFound if they cannot see it at all."""
    study = studies_visible(user=user).filter(slug=slug).first()
    if study is None:
        raise NotFound(f"no study {slug!r} of yours or shared with you")
    access = study_access(user=user, study=study)
    if ACCESS_ORDER[access] < ACCESS_ORDER[need]:
        what = "only its owner can do this" if need == "owner" else "this needs edit access, shared by its owner"
        raise PermissionDenied(f"you have {access} access to study {slug}; {what}")
    study.access = access
    return study


def stimulus_list(*, study: Study) -> QuerySet[Stimulus]:
    return study.stimuli.order_by("id")


def stimulus_get(*, study: Study, stimulus_id: int) -> Stimulus:
    stimulus = study.stimuli.filter(pk=stimulus_id).first()
    if stimulus is None:
        raise NotFound(f"study {study.slug} has no stimulus {stimulus_id}")
    return stimulus


def share_list(*, study: Study) -> QuerySet[StudyShare]:
    return study.shares.select_related("user").order_by("user__username")


# --- progress ------------------------------------------------------------------------------------


def _estimate(study: Study, remaining: int, now: datetime) -> dict:
    """Responses per hour over the last 24 h (or since launch, if later), and the time the
    remaining responses take at that rate. Unknown (None) before the first response. Only a live
    study gets a time (seconds_left, completes_at): a paused one collects nothing until it is resumed,
    a closed one nothing more; their rate is still given."""
    estimate = {"responses_per_hour": None, "window_hours": None, "remaining": remaining, "seconds_left": None, "completes_at": None}
    if study.launched_at is None:
        return estimate
    start = max(study.launched_at, now - RATE_WINDOW)
    hours = max((now - start).total_seconds() / 3600, 1 / 60)
    recent = responses_included(study=study).filter(created_at__gte=start).count()
    estimate["window_hours"] = round(hours, 3)
    if recent == 0:
        return estimate
    rate = recent / hours
    estimate["responses_per_hour"] = round(rate, 3)
    if study.status != Study.Status.LIVE:
        return estimate
    seconds = math.ceil(remaining / rate * 3600)
    estimate.update(seconds_left=seconds, completes_at=now + timedelta(seconds=seconds))
    return estimate


def study_progress(*, study: Study, now: datetime | None = None) -> dict:
    """Participants, responses per main stimulus against the target (participants per stimulus
    for each task kind), explanation jobs by status with the failed ones' errors, and an estimate."""
    now = now or timezone.now()
    participants = study.participants.aggregate(
        started=Count("id"),
        active=Count("id", filter=Q(status=Participant.Status.ACTIVE)),
        completed=Count("id", filter=Q(status=Participant.Status.COMPLETED)),
        excluded=Count("id", filter=Q(status=Participant.Status.EXCLUDED)),
    )
    target = study.participants_per_stimulus * len(study.task_kinds)
    done = defaultdict(dict)
    for sid, kind, n in responses_included(study=study).values_list("trial__stimulus_id", "trial__task_kind").annotate(n=Count("id")):
        done[sid][kind] = n
    rows = [
        {"id": s.pk, "name": s.name, "condition": s.condition, "responses": sum(done[s.pk].values()),
         "by_task_kind": {kind: done[s.pk].get(kind, 0) for kind in study.task_kinds}, "target": target}
        for s in study.stimuli.filter(role=StimulusRole.MAIN).order_by("id")
    ]
    per_kind = study.participants_per_stimulus
    total_done = sum(min(n, per_kind) for r in rows for n in r["by_task_kind"].values())
    total_target = target * len(rows)
    jobs = study_jobs(study=study)
    by_status = {status: 0 for status in ExplanationJob.Status.values}
    by_status.update(dict(jobs.values_list("status").annotate(n=Count("id")).values_list("status", "n")))
    failed = jobs.filter(status=ExplanationJob.Status.FAILED).order_by("id")
    return {
        "status": study.status,
        "participants": participants,
        "responses": {"done": total_done, "target": total_target, "fraction": total_done / total_target if total_target else None},
        "stimuli": rows,
        "jobs": {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "failed": [
                {"id": j.pk, "model": j.model_key, "method": j.method_key, "image_sha256": j.image_sha256,
                 "attempts": j.attempts, "error": j.error}
                for j in failed[:100]
            ],
        },
        "trials_open": Trial.objects.filter(stimulus__study=study, status=Trial.Status.ASSIGNED).count(),
        "estimate": _estimate(study, total_target - total_done, now),
    }


# --- researcher accounts -------------------------------------------------------------------------


def researchers_list() -> QuerySet:
    """Every user by username, with n_owned (studies they own) and n_shared (studies shared with them)."""
    return get_user_model().objects.annotate(
        n_owned=Count("studies", distinct=True), n_shared=Count("study_shares", distinct=True)
    ).order_by("username")
