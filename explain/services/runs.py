"""Running explanation jobs on a worker: claim (compare-and-set to RUNNING), explain with the model
(loaded once per process), store the raw and comparison maps and their metadata, mark DONE, and queue
the score refreshes and faithfulness on commit. One runner serves a task of one job and a task of
several (the stimuli of jobs sharing model, method and parameters explained in one batch)."""
from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

import torch
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations.models import Stimulus
from studyserver.errors import NotFound
from studyserver.queueing import enqueue_on_commit
from studyserver.storage import array_save

from ..method_catalogue import InvalidParams, UnknownMethod
from ..methods.batching import batch_size_for, batch_size_limited
from ..model_catalogue import ModelUnavailable, UnknownModel
from ..models import ExplanationJob, ModelMap
from ..pipeline import InvalidTarget, explain_images, target_check
from ..selectors import job_image
from ..zoo import model_load

log = logging.getLogger(__name__)

# A RUNNING job whose worker has been silent this long is taken over by the next delivery.
RUNNING_STALE_AFTER = timedelta(seconds=settings.EXPLAIN_RUNNING_STALE_S)
PERMANENT_ERRORS = (InvalidParams, UnknownMethod, UnknownModel, ModelUnavailable, InvalidTarget)
# Sent by name: scoring lives above this layer (analysis), faithfulness in this app's tasks.
SCORES_TASK = "analysis.tasks.scores_refresh"
FAITHFULNESS_TASK = "explain.tasks.model_map_faithfulness"


def _job_claim(job_id: int) -> ExplanationJob | None:
    """Compare-and-set to RUNNING. None when the job is done, or running on a live worker."""
    with transaction.atomic():
        job = ExplanationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status == ExplanationJob.Status.DONE:
            return None
        now = timezone.now()
        if job.status == ExplanationJob.Status.RUNNING and job.started_at and now - job.started_at < RUNNING_STALE_AFTER:
            return None
        job.status = ExplanationJob.Status.RUNNING
        job.started_at = now
        job.attempts += 1
        job.save(update_fields=["status", "started_at", "attempts"])
        return job


def _job_fail(job: ExplanationJob, error: str, *, final: bool) -> None:
    ExplanationJob.objects.filter(pk=job.pk).update(
        status=ExplanationJob.Status.FAILED if final else ExplanationJob.Status.PENDING,
        error=error[:4000],
        finished_at=timezone.now() if final else None,
    )


def explanation_job_run(*, job_id: int, final_attempt: bool = True) -> ExplanationJob | None:
    """Run one job on this worker: `explanation_jobs_run` of that one job. Returns the job as stored
    (DONE, or FAILED with the message), or None when it was done already or running elsewhere."""
    claimed = explanation_jobs_run(job_ids=[job_id], final_attempt=final_attempt)
    return ExplanationJob.objects.get(pk=claimed[0].pk) if claimed else None


def explanation_jobs_run(*, job_ids: list[int], final_attempt: bool = True) -> list[ExplanationJob]:
    """Run several jobs on this worker, the stimuli of jobs sharing (model, method, params) explained
    in one batch (`pipeline.explain_images`), each stored as `explanation_job_run` stores it.

    Each job is claimed as in `explanation_job_run` (done ones and ones running on a live worker are
    skipped). A job whose own input cannot work (its target outside the model's classes) is marked
    FAILED alone; an error a retry cannot fix for the whole group (bad parameters, unknown model)
    marks the group's jobs FAILED. Any other error puts every claimed job not yet stored back to
    PENDING (FAILED on the final attempt) and is re-raised for the task to retry. Returns the jobs
    claimed."""
    claimed = [job for job in map(_job_claim, job_ids) if job is not None]
    groups: dict[tuple, list[ExplanationJob]] = {}
    for job in claimed:
        groups.setdefault((job.model_key, job.method_key, job.params_hash), []).append(job)
    unfinished = {job.pk: job for job in claimed}
    try:
        for jobs in groups.values():
            for job, explanation in _group_explain(jobs, unfinished):
                _job_store(job, explanation)
                unfinished.pop(job.pk)
    except SoftTimeLimitExceeded:
        limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
        for job in unfinished.values():
            _job_fail(job, f"SoftTimeLimitExceeded: the jobs ran longer than {limit} s", final=True)
    except Exception as exc:
        for job in unfinished.values():
            _job_fail(job, f"{exc.__class__.__name__}: {exc}", final=final_attempt)
        raise
    return claimed


def _group_explain(jobs: list[ExplanationJob], unfinished: dict[int, ExplanationJob]):
    """[(job, Explanation)] for jobs of one (model, method, params); jobs that fail for good are
    marked FAILED and left out (and dropped from `unfinished`)."""

    def fail(job, exc):
        _job_fail(job, f"{exc.__class__.__name__}: {exc}", final=True)
        unfinished.pop(job.pk)

    head = jobs[0]
    try:
        model = model_load(head.model_key)
    except PERMANENT_ERRORS as exc:
        for job in jobs:
            fail(job, exc)
        return []
    runnable = []
    for job in jobs:
        try:
            runnable.append((job, None if job.target < 0 else target_check(job.target, model)))
        except InvalidTarget as exc:
            fail(job, exc)
    if not runnable:
        return []
    try:
        images = [job_image(job) for job, _ in runnable]
    except NotFound as exc:  # the image's last stimulus was deleted: nothing to explain, ever
        for job, _ in runnable:
            fail(job, exc)
        return []
    targets = [target for _, target in runnable]
    try:
        explanations = _shrinking_batches(
            model,
            lambda: explain_images(model, images, head.method_key, targets=targets, params=head.params, seed=0),
            f"jobs {[job.pk for job, _ in runnable]}",
        )
    except PERMANENT_ERRORS as exc:
        for job, _ in runnable:
            fail(job, exc)
        return []
    return [(job, explanation) for (job, _), explanation in zip(runnable, explanations)]


def _shrinking_batches(model, run, what: str):
    """run(); on an out-of-memory error again within batch_size_limited, with half the device's
    default rows per pass (and so half the stimuli per batch), then half of that, down to 1. The first
    try has no cap, so a batch_size a researcher asked for holds until memory says otherwise."""
    limit = None
    while True:
        try:
            with contextlib.ExitStack() as stack:
                if limit is not None:
                    stack.enter_context(batch_size_limited(limit))
                return run()
        except torch.OutOfMemoryError:
            if limit == 1:
                raise
            limit = max(1, (limit or batch_size_for(model.device, backward=True)) // 2)
            log.warning("%s: out of memory, retrying with %s rows per pass", what, limit)
            if model.device.type == "cuda":
                torch.cuda.empty_cache()


@transaction.atomic
def _job_store(job: ExplanationJob, explanation) -> ExplanationJob:
    job = ExplanationJob.objects.select_for_update().get(pk=job.pk)
    if job.status == ExplanationJob.Status.DONE:  # another delivery finished first
        return job
    model_map = ModelMap(
        job=job,
        height=explanation.raw.shape[0],
        width=explanation.raw.shape[1],
        target=explanation.target,
        predicted_class=explanation.predicted,
        predicted_probability=explanation.predicted_probability,
        target_probability=explanation.target_probability,
        method_version=explanation.method_version,
        device=explanation.device,
        seconds=explanation.seconds,
        meta={"params": explanation.params, "weights_hash": explanation.weights_hash, "seed": 0, **explanation.meta},
    )
    array_save(model_map.raw_file, "raw.npy", explanation.raw)
    array_save(model_map.comparison_file, "comparison.npy", explanation.comparison)
    model_map.save()
    job.status = ExplanationJob.Status.DONE
    job.error = ""
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    for stimulus_id in Stimulus.objects.filter(sha256=job.image_sha256).values_list("id", flat=True):
        enqueue_on_commit(SCORES_TASK, stimulus_id)
    if settings.EXPLAIN_FAITHFULNESS:
        enqueue_on_commit(FAITHFULNESS_TASK, model_map.pk)
    return job
