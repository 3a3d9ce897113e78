"""Writes for explanation jobs: creating them for a study, and running one on a worker."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from datetime import timedelta

import torch
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from analysis.storage import array_save
from annotations.models import Stimulus, StimulusRole, Study
from studyserver.errors import InvalidInput
from studyserver.queueing import enqueue_on_commit

from .methods import InvalidParams, UnknownMethod, method_get
from .methods.batching import batch_size_for, batch_size_limited
from .models import ExplanationJob, ModelMap
from .pipeline import InvalidTarget, explain_image, explain_images, target_check
from .zoo import ModelUnavailable, UnknownModel, model_load, model_weights_hash

log = logging.getLogger(__name__)

# A RUNNING job whose worker has been silent this long is taken over by the next delivery.
RUNNING_STALE_AFTER = timedelta(seconds=settings.EXPLAIN_RUNNING_STALE_S)
PERMANENT_ERRORS = (InvalidParams, UnknownMethod, UnknownModel, ModelUnavailable, InvalidTarget)


CONFIG_FIELDS = {"model", "method", "params"}


def job_target(stimulus: Stimulus) -> int:
    """The class a stimulus' explanation jobs explain: its label, or -1 (the model's top prediction)."""
    return stimulus.class_index if stimulus.class_index is not None else -1


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def explain_config_resolve(config: list[dict]) -> list[tuple[str, str, str, dict]]:
    """[(model key, weights hash, method key, resolved params)] from a study's explain_config.
    Raises InvalidInput naming the unknown model, method or parameter and the valid ones."""
    resolved = []
    for i, entry in enumerate(config):
        if not isinstance(entry, dict):
            raise InvalidInput(f"explain_config[{i}] must be an object {{model, method, params}}")
        unknown = sorted(set(entry) - CONFIG_FIELDS)
        if unknown:
            raise InvalidInput(f"explain_config[{i}]: unknown field(s) {', '.join(unknown)}; valid: model, method, params")
        try:
            model_key = entry.get("model", "efficientnet_lite0")
            weights = model_weights_hash(model_key)
            method = method_get(entry["method"])
            params = method.params_resolve(entry.get("params") or {})
        except KeyError:
            raise InvalidInput(f"explain_config[{i}] needs a 'method'") from None
        except PERMANENT_ERRORS as exc:
            raise InvalidInput(f"explain_config[{i}]: {exc}") from None
        resolved.append((model_key, weights, method.key, params))
    return resolved


@transaction.atomic
def explanation_jobs_create(*, study: Study) -> list[ExplanationJob]:
    """One job per (stimulus image, model + weights, method, params, target); existing jobs are
    reused, so launching twice creates and queues nothing new. New jobs are queued on commit, those of
    one (model, weights, method, params) in tasks of `settings.EXPLAIN_STIMULI_PER_TASK` jobs (their
    stimuli explained in one batch where the method allows; a task of one job is
    `explanation_job_execute`)."""
    jobs = []
    for model_key, weights, method_key, params in explain_config_resolve(study.explain_config):
        new = []
        for stimulus in study.stimuli.filter(role=StimulusRole.MAIN):
            job, created = ExplanationJob.objects.get_or_create(
                image_sha256=stimulus.sha256,
                model_key=model_key,
                weights_hash=weights,
                method_key=method_key,
                params_hash=params_hash(params),
                target=job_target(stimulus),
                defaults={"stimulus": stimulus, "params": params},
            )
            if created:
                new.append(job.pk)
            job.created_now = created
            jobs.append(job)
        explanation_jobs_enqueue(new)
    return jobs


def explanation_jobs_enqueue(job_ids: list[int]) -> None:
    """Queue jobs of one (model, weights, method, params) on commit, `EXPLAIN_STIMULI_PER_TASK` per task."""
    from .tasks import explanation_job_execute, explanation_jobs_execute

    size = max(1, settings.EXPLAIN_STIMULI_PER_TASK)
    for start in range(0, len(job_ids), size):
        chunk = job_ids[start : start + size]
        if len(chunk) == 1:
            enqueue_on_commit(explanation_job_execute, chunk[0])
        else:
            enqueue_on_commit(explanation_jobs_execute, chunk)


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


def stimulus_rgb(stimulus: Stimulus) -> Image.Image:
    """The stimulus' stored 8-bit RGB rendition: what participants saw and what the model explains."""
    with stimulus.rendition.open("rb") as handle:
        return Image.open(handle).convert("RGB")


def explanation_job_run(*, job_id: int, final_attempt: bool = True) -> ExplanationJob | None:
    """Run one job on this worker: claim it, explain with the model (loaded once per process),
    store the raw and comparison maps, mark it DONE, and queue score refreshes on commit.

    Errors that a retry cannot fix (bad parameters, unknown model, target outside the classes) mark
    the job FAILED with the message. Other errors are recorded and re-raised for the task to retry;
    on the final attempt the job is marked FAILED.
    """
    job = _job_claim(job_id)
    if job is None:
        return None
    try:
        model = model_load(job.model_key)
        explanation = _explain_shrinking_batches(model, stimulus_rgb(job.stimulus), job)
    except SoftTimeLimitExceeded:
        limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
        _job_fail(job, f"SoftTimeLimitExceeded: the job ran longer than {limit} s", final=True)
        return job
    except PERMANENT_ERRORS as exc:
        _job_fail(job, f"{exc.__class__.__name__}: {exc}", final=True)
        return job
    except Exception as exc:
        _job_fail(job, f"{exc.__class__.__name__}: {exc}", final=final_attempt)
        raise
    return _job_store(job, explanation)


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
    images = [stimulus_rgb(job.stimulus) for job, _ in runnable]
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


def _explain_shrinking_batches(model, image, job: ExplanationJob):
    """explain_image; on a CUDA out-of-memory error, again with half the rows per pass, down to 1."""
    target = None if job.target < 0 else job.target
    return _shrinking_batches(
        model,
        lambda: explain_image(model, image, job.method_key, target=target, params=job.params, seed=0),
        f"job {job.pk}",
    )


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
    from analysis.tasks import scores_refresh

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
        enqueue_on_commit(scores_refresh, stimulus_id)
    if settings.EXPLAIN_FAITHFULNESS:
        from .tasks import model_map_faithfulness

        enqueue_on_commit(model_map_faithfulness, model_map.pk)
    return job
