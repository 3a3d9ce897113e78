"""Reads of the audit log."""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from .models import AuditEntry


def audit_entries(
    *,
    study_id: int | None = None,
    study_slug: str = "",
    action: str = "",
    actor_name: str = "",
    since: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Entries, newest first, filtered by any of: the study (id, or slug as it was when recorded),
    the action, the actor's name, and a start time (inclusive)."""
    entries = AuditEntry.objects.all()
    if study_id is not None:
        entries = entries.filter(study_id=study_id)
    if study_slug:
        entries = entries.filter(study_slug=study_slug)
    if action:
        entries = entries.filter(action=action)
    if actor_name:
        entries = entries.filter(actor_name=actor_name)
    if since is not None:
        entries = entries.filter(at__gte=since)
    return entries.order_by("-at", "-id")
