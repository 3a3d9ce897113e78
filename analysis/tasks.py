"""Celery tasks of the default queue: human map updates, score refreshes, reliability. They take ids
and are idempotent: folding is exactly-once per response, scoring and reliability overwrite."""
from celery import shared_task
from django.core.exceptions import ObjectDoesNotExist

from studyserver.errors import DomainError
from studyserver.queueing import coalesced_release

from . import services

# Transient failures (database, storage) retry with backoff; a domain error or a deleted row would
# fail the same way again, so those do not.
RETRY = {"acks_late": True, "max_retries": 5, "autoretry_for": (Exception,), "dont_autoretry_for": (DomainError, ObjectDoesNotExist),
         "retry_backoff": 2, "retry_backoff_max": 60}


@shared_task(**RETRY)
def human_map_update(stimulus_id: int, task_kind: str) -> None:
    """Fold new responses into the map (or rebuild it when stale), then rescore. Coalesced: the
    release comes before the fold reads the database (studyserver/queueing.py)."""
    coalesced_release(human_map_update.name, stimulus_id, task_kind)
    services.human_map_update(stimulus_id=stimulus_id, task_kind=task_kind)


@shared_task(**RETRY)
def human_map_rebuild(stimulus_id: int, task_kind: str) -> None:
    """After exclusions or a recipe change: recompute the map from raw responses, then rescore."""
    services.human_map_rebuild(stimulus_id=stimulus_id, task_kind=task_kind)


@shared_task(**RETRY)
def participant_maps_rebuild(participant_id: int) -> None:
    """A participant was excluded or re-included: rebuild the maps they answered for."""
    services.participant_maps_rebuild(participant_id=participant_id)


@shared_task(**RETRY)
def scores_refresh(stimulus_id: int) -> None:
    coalesced_release(scores_refresh.name, stimulus_id)
    services.scores_refresh(stimulus_id=stimulus_id)


@shared_task(acks_late=True, max_retries=2, autoretry_for=(Exception,), dont_autoretry_for=(DomainError, ObjectDoesNotExist), retry_backoff=30)
def reliability_refresh(study_id: int, task_kind: str) -> None:
    """Bring a study's ceilings, floors and reliability curves up to date (collapses bursts)."""
    coalesced_release(reliability_refresh.name, study_id, task_kind)
    services.reliability_refresh(study_id=study_id, task_kind=task_kind)


@shared_task(acks_late=True)
def pending_work_sweep() -> int:
    """Periodic safety net: queue map updates for responses never folded (a lost message), maps
    holding excluded participants, and maps made with another recipe. Returns how many."""
    return services.maps_pending_queue()
