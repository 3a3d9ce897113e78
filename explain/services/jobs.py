"""Writes for explanation jobs on the web side: creating a study's jobs and queueing them, and pruning
jobs no stimulus needs any more. Torch-free (the worker side is `runs`)."""
from __future__ import annotations

from typing import Iterable

from django.conf import settings
from django.db import transaction

from annotations.models import Stimulus, StimulusRole, Study
from studyserver.queueing import enqueue_on_commit

from ..models import ExplanationJob, ModelMap
from ..study_config import explain_config_resolve, job_target, params_hash

JOB_TASK = "explain.tasks.explanation_job_execute"
JOBS_TASK = "explain.tasks.explanation_jobs_execute"


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
                defaults={"params": params},
            )
            if created:
                new.append(job.pk)
            job.created_now = created
            jobs.append(job)
        explanation_jobs_enqueue(new)
    return jobs


def explanation_jobs_enqueue(job_ids: list[int]) -> None:
    """Queue jobs of one (model, weights, method, params) on commit, `EXPLAIN_STIMULI_PER_TASK` per task."""
    size = max(1, settings.EXPLAIN_STIMULI_PER_TASK)
    for start in range(0, len(job_ids), size):
        chunk = job_ids[start : start + size]
        if len(chunk) == 1:
            enqueue_on_commit(JOB_TASK, chunk[0])
        else:
            enqueue_on_commit(JOBS_TASK, chunk)


@transaction.atomic
def explanation_jobs_prune(*, image_sha256s: Iterable[str]) -> dict[str, int]:
    """Delete the jobs (and their stored maps, once committed) of images no stimulus holds any more;
    jobs of an image another stimulus still holds stay. Returns {"jobs": deleted, "files": map files}."""
    held = set(Stimulus.objects.filter(sha256__in=set(image_sha256s)).values_list("sha256", flat=True))
    doomed = ExplanationJob.objects.filter(image_sha256__in=set(image_sha256s) - held)
    names = [name for pair in doomed.filter(map__isnull=False).values_list("map__raw_file", "map__comparison_file")
             for name in pair if name]
    deleted = doomed.count()
    doomed.delete()
    if names:
        storage = ModelMap.raw_file.field.storage
        transaction.on_commit(lambda: [storage.delete(name) for name in names])
    return {"jobs": deleted, "files": len(names)}
