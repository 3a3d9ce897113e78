"""Reads for researchers: which studies a user may see or change, stimuli, progress and scores.

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
from statistics import mean, stdev
from typing import Iterable

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from analysis.models import HumanCeiling, Score
from analysis.normalisation import normalise_one
from analysis.scoring import LOWER_IS_BETTER
from explain.models import ExplanationJob
from explain.services import explain_config_resolve, job_target, params_hash
from studyserver.errors import InvalidInput, NotFound, PermissionDenied

from .models import Participant, Response, Stimulus, StimulusRole, Study, StudyShare, Trial

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


def study_jobs(*, study: Study) -> QuerySet[ExplanationJob]:
    """The explanation jobs of this study's main stimuli for its configured models and methods, each
    for the target a main stimulus with its image asks for (`job_target`)."""
    own = (
        study.stimuli.filter(role=StimulusRole.MAIN, sha256=OuterRef("image_sha256"))
        .annotate(job_target=Coalesce("class_index", Value(-1)))
        .filter(job_target=OuterRef("target"))
    )
    wanted = Q(pk__in=[])
    try:
        for model_key, weights, method_key, params in explain_config_resolve(study.explain_config or []):
            wanted |= Q(model_key=model_key, weights_hash=weights, method_key=method_key, params_hash=params_hash(params))
    except InvalidInput:  # a model or method gone from this installation: match by names only
        for entry in study.explain_config or []:
            wanted |= Q(model_key=entry.get("model", "efficientnet_lite0"), method_key=entry.get("method"))
    return ExplanationJob.objects.filter(wanted, Exists(own))


def stimulus_jobs(*, study: Study, stimuli: Iterable[Stimulus], done: bool = False) -> dict[int, list[ExplanationJob]]:
    """Each stimulus' own explanation jobs (by stimulus id, ordered by model, method, id): of its
    image, for one of the study's configured models and methods, and for its target (its label, or -1
    for the top prediction). A job is shared by every stimulus that asks for exactly it, so a map that
    another study made of the same image, for another label or method, is not this study's.
    done: only finished jobs with a stored map."""
    stimuli = list(stimuli)
    jobs = study_jobs(study=study).filter(image_sha256__in={s.sha256 for s in stimuli})
    if done:
        jobs = jobs.filter(status=ExplanationJob.Status.DONE, map__isnull=False)
    by_image_target: dict[tuple[str, int], list[ExplanationJob]] = defaultdict(list)
    for job in jobs.select_related("map").order_by("model_key", "method_key", "id"):
        by_image_target[(job.image_sha256, job.target)].append(job)
    return {s.pk: by_image_target.get((s.sha256, job_target(s)), []) for s in stimuli}


def _responses_included(study: Study) -> QuerySet[Response]:
    return Response.objects.filter(trial__stimulus__study=study, trial__stimulus__role=StimulusRole.MAIN).exclude(
        trial__participant__status=Participant.Status.EXCLUDED
    )


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
    recent = _responses_included(study).filter(created_at__gte=start).count()
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
    for sid, kind, n in _responses_included(study).values_list("trial__stimulus_id", "trial__task_kind").annotate(n=Count("id")):
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


# --- results -------------------------------------------------------------------------------------


def _summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "mean": mean(values) if values else None,
        "sd": stdev(values) if len(values) > 1 else None,
    }


def study_scores(*, study: Study) -> list[dict]:
    """Scores of this study's main stimuli grouped by (model, method, params, task kind, metric):
    summary over stimuli (undefined values, stored as null, are counted apart), a breakdown by
    condition, and every stimulus's value with its ceiling, floor and normalised score (null, with
    the reason in `normalised_note`, where undefined: `analysis.normalisation`)."""
    scores = (
        Score.objects.filter(stimulus__study=study, stimulus__role=StimulusRole.MAIN)
        .select_related("job", "stimulus")
        .order_by("job__model_key", "job__method_key", "job__params_hash", "task_kind", "metric", "stimulus_id")
    )
    bounds = {(c["stimulus_id"], c["task_kind"], c["metric"]): (c["ceiling"], c["floor"]) for c in HumanCeiling.objects.filter(
        stimulus__study=study, stimulus__role=StimulusRole.MAIN).values("stimulus_id", "task_kind", "metric", "ceiling", "floor")}
    groups: dict[tuple, dict] = {}
    for score in scores:
        job = score.job
        ceiling, floor = bounds.get((score.stimulus_id, score.task_kind, score.metric), (None, None))
        normalised, note = normalise_one(score.value, ceiling, floor, lower_is_better=score.metric in LOWER_IS_BETTER)
        key = (job.model_key, job.method_key, job.params_hash, score.task_kind, score.metric)
        group = groups.setdefault(key, {
            "model": job.model_key, "method": job.method_key, "params": job.params, "task_kind": score.task_kind,
            "metric": score.metric, "values": [],
        })
        group["values"].append({
            "stimulus_id": score.stimulus_id, "stimulus_name": score.stimulus.name, "condition": score.stimulus.condition,
            "value": score.value, "n_participants": score.n_participants, "ceiling": ceiling, "floor": floor,
            "normalised": normalised if math.isfinite(normalised) else None, "normalised_note": note,
        })
    result = []
    for group in groups.values():
        defined = [v["value"] for v in group["values"] if v["value"] is not None]
        by_condition = defaultdict(list)
        for v in group["values"]:
            if v["value"] is not None:
                by_condition[v["condition"]].append(v["value"])
        group["summary"] = {**_summary(defined), "undefined": len(group["values"]) - len(defined)}
        group["by_condition"] = [{"condition": c, **_summary(vals)} for c, vals in sorted(by_condition.items())]
        result.append(group)
    return result


# --- researcher accounts -------------------------------------------------------------------------


def researchers_list() -> QuerySet:
    """Every user by username, with n_owned (studies they own) and n_shared (studies shared with them)."""
    return get_user_model().objects.annotate(
        n_owned=Count("studies", distinct=True), n_shared=Count("study_shares", distinct=True)
    ).order_by("username")
