"""The explain worker is killed (SIGKILL) in the middle of a job: the job is redone once, by another
worker, and stored once.

Real processes: a private redis-server (broker; through the environment a visibility timeout of 6 s
and a restore sweep every second), two Celery workers in turn on the `explain` queue. The job is the platform's own (Grad-CAM on
EfficientNet-Lite0). Recovery: acks_late leaves the message unacknowledged; after the visibility
timeout the broker hands it to the live worker; the job, RUNNING on a worker silent for longer than
EXPLAIN_RUNNING_STALE_S, is taken over (compare-and-set) and stored once.
"""
import os
import signal
import time

import pytest
from celery import Celery

from explain.models import ExplanationJob, ModelMap
from tests.conftest import _broker_purge, wait_for
from tests.faults.stack import app_env, database_url, free_port, redis_start, stop, worker_start

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_job_whose_worker_is_killed_is_redone_once_and_stored_once(transactional_db, make_study, settings):
    study = make_study(photos=("chelsea.png",), labels=(285,), launch=True)
    stimulus = study.stimuli.get()
    job = ExplanationJob.objects.get(image_sha256=stimulus.sha256, method_key="gradcam")  # created by the launch
    # The launch queued it on this checkout's shared test broker; this test sends it to its own.
    _broker_purge(settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"])
    port = free_port()
    redis = redis_start(port, "redis-kill-test")
    broker = f"redis://127.0.0.1:{port}/0"
    env = app_env(database_url=database_url(), broker=broker, media_root=str(settings.MEDIA_ROOT),
                  CELERY_VISIBILITY_TIMEOUT="6", EXPLAIN_RUNNING_STALE_S="4",
                  CELERY_UNACKED_RESTORE_INTERVAL="1", CELERY_UNACKED_RESTORE_THROTTLE="1")
    first = second = None
    try:
        first = worker_start(env, "explain-first", queues="explain")
        wait_for(lambda: b"ready" in first.log_path.read_bytes(), timeout=120, what="the first worker", process=first)
        # set_as_current=False: else this app becomes the current one, and every later delay() in this
        # test process would publish to this private broker, gone once the test ends.
        sender = Celery(broker=broker, set_as_current=False)
        sender.send_task("explain.tasks.explanation_job_execute", args=[job.pk], queue="explain")
        jobs = ExplanationJob.objects.filter(pk=job.pk)
        wait_for(lambda: jobs.filter(status="running").exists(), timeout=60, interval=0.02, what="the job running", process=first)
        os.killpg(first.pid, signal.SIGKILL)  # the whole worker, mid-job
        first.wait(10)
        job.refresh_from_db()
        assert job.status == "running" and job.attempts == 1 and not ModelMap.objects.filter(job=job).exists(), \
            "the worker was not killed in the middle of the job"
        killed_at = time.monotonic()

        second = worker_start(env, "explain-second", queues="explain")
        wait_for(lambda: jobs.filter(status="done").exists(), timeout=120, what="the job redone", process=second)
        time.sleep(8)  # longer than the visibility timeout: any second redelivery would show now
    finally:
        for process in (first, second):
            if process is not None:
                stop(process)
        stop(redis)

    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 2  # redone once
    assert ModelMap.objects.filter(job=job).count() == 1  # stored once
    assert time.monotonic() - killed_at >= 6  # not before the message became visible again
    log = second.log_path.read_text(errors="replace")
    assert log.count("explanation_job_execute[") >= 1 and "succeeded" in log
