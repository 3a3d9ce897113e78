"""Queue a Celery task once the current transaction commits, without ever failing the request.

The database is the record: if the broker is unreachable when the transaction commits, the data is
already stored and the periodic sweep (`analysis.tasks.pending_work_sweep`, `explain.tasks`) picks the
work up later. So a publish error is logged, never raised into the request that saved the data.
"""
import functools
import logging

from django.db import transaction

log = logging.getLogger(__name__)


class TaskName(str):
    """A Celery task's registered name. Tasks are queued by name, so a module that queues work above
    its layer (a stored response -> fold its map; a stored model map -> score it) never imports the
    module that does it. The name's routing (queue) comes from CELERY_TASK_ROUTES."""

    @property
    def name(self) -> str:
        return str(self)


def _name(task) -> TaskName:
    return TaskName(task if isinstance(task, str) else task.name)


def _publish(task: TaskName, args, kwargs) -> None:
    from celery import current_app

    try:
        current_app.send_task(task, args=args, kwargs=kwargs, retry=True,
                              retry_policy={"max_retries": 2, "interval_start": 0.1})
    except Exception:  # noqa: BLE001 - the sweep recovers; the request must not fail after commit
        log.exception("could not queue %s%r; the periodic sweep will pick it up", task, args)


def enqueue_on_commit(task: str, *args, **kwargs) -> None:
    """Queue the task named `task` (a name, or a task object) with these arguments once the current
    transaction commits."""
    transaction.on_commit(functools.partial(_publish, _name(task), args, kwargs))


# --- coalescing: bursts of "recompute this" collapse into one queued message ---------------------
#
# Under load every submit asks for its stimulus' map to be updated, and every update for the scores
# to be refreshed. The task folds *all* new responses, so one queued message per (task, args) is
# enough: on commit, `SET key NX` in the broker's Redis; only the request that set it publishes. The
# task deletes the key when it starts (`coalesced_release`), before it reads the database, so work
# committed after that queues a follow-up: one running task plus at most one queued (Label Studio's
# job_deduplication). The key expires (COALESCE_TTL_S), so a lost message only delays the work until
# then, and the periodic sweep (which publishes without coalescing) finds it anyway. Without Redis
# (the filesystem or memory broker) nothing coalesces: every request publishes.

COALESCE_TTL_S = 120
_redis_clients: dict = {}


def _coalesce_client():
    from django.conf import settings

    url = str(settings.CELERY_BROKER_URL or "")
    if not url.startswith(("redis://", "rediss://")):
        return None, ""
    client = _redis_clients.get(url)
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        _redis_clients[url] = client
    prefix = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("global_keyprefix", "")
    return client, prefix


def _coalesce_key(prefix: str, task_name: str, args) -> str:
    return f"{prefix}coalesce:{task_name}:{':'.join(str(a) for a in args)}"


def _publish_coalesced(task: TaskName, args) -> None:
    client, prefix = _coalesce_client()
    if client is not None:
        key = _coalesce_key(prefix, task, args)
        try:
            if not client.set(key, "1", nx=True, ex=COALESCE_TTL_S):
                return  # a message for the same work is queued and has not started yet
        except Exception:  # noqa: BLE001 - Redis down: the publish below fails too, and is logged
            log.warning("coalescing unavailable for %s%r", task, args)
    _publish(task, args, {})


def enqueue_coalesced_on_commit(task: str, *args) -> None:
    """Queue the task named `task` with `args` on commit unless the same call is already queued and
    not started. The task must call `coalesced_release(<its name>, *args)` first thing."""
    transaction.on_commit(functools.partial(_publish_coalesced, _name(task), args))


def coalesced_release(task_name: str, *args) -> None:
    """Called by a coalesced task when it starts: requests from now on queue a follow-up."""
    client, prefix = _coalesce_client()
    if client is None:
        return
    try:
        client.delete(_coalesce_key(prefix, task_name, args))
    except Exception:  # noqa: BLE001 - the key expires by itself
        log.warning("could not release the coalescing key of %s%r", task_name, args)
