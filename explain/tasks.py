"""Celery tasks of the `explain` queue. They take ids, are idempotent (acks_late is safe) and never
wait on another task."""
from celery import shared_task
from django.conf import settings

from .services import faithfulness, runs

RETRY_BASE_SECONDS = 10


# Both job tasks: redelivered if the worker dies mid-job, retried on transient errors, time-limited.
JOB_TASK = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": 3,
    "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
}


def _run_retrying(task, run, **kwargs) -> None:
    """run(final_attempt=..., **kwargs); on an error the service did not settle, retry with exponential
    backoff (10, 20, 40 s); the last attempt's error is raised (the service has marked the jobs failed)."""
    final = task.request.retries >= task.max_retries
    try:
        run(final_attempt=final, **kwargs)
    except Exception as exc:
        if final:
            raise
        raise task.retry(exc=exc, countdown=RETRY_BASE_SECONDS * 2**task.request.retries) from exc


@shared_task(**JOB_TASK)
def explanation_job_execute(self, job_id: int) -> None:
    """Run one ExplanationJob. Errors a retry cannot fix are recorded on the job by the service and
    not raised; anything else (a lost database connection, an out-of-memory error that survived the
    batch shrinking) is retried with exponential backoff (10, 20, 40 s), then recorded as failed."""
    _run_retrying(self, runs.explanation_job_run, job_id=job_id)


@shared_task(**JOB_TASK)
def explanation_jobs_execute(self, job_ids: list[int]) -> None:
    """Run several ExplanationJobs, the stimuli of each (model, method, params) explained in one
    batch (`runs.explanation_jobs_run`). A job that cannot succeed is recorded as failed alone;
    any other error puts the jobs not yet stored back to pending and the task is retried as
    `explanation_job_execute` is (done jobs are skipped on the retry)."""
    _run_retrying(self, runs.explanation_jobs_run, job_ids=list(job_ids))


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def model_map_faithfulness(model_map_id: int) -> None:
    """Insertion and deletion AUC for one stored ModelMap (idempotent: done maps are skipped)."""
    faithfulness.model_map_faithfulness_compute(model_map_id=model_map_id)
