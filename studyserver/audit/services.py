"""The one write of the audit log: `audit_record` appends an entry. There is no update or delete."""
from __future__ import annotations

from typing import Any

from .models import AuditAction, AuditEntry

# actor_name of entries with no user: work the platform did by itself, and `manage.py` commands.
SYSTEM = "system"
COMMAND_LINE = "manage.py"
DETAILS_MAX_KEYS = 30
DETAIL_TEXT_MAX = 300
DETAIL_SCALARS = (bool, int, float, str, type(None))


class AuditDetailsInvalid(ValueError):
    """`details` is not a small flat object of scalars (a programming error, never user input)."""


def _details_clean(details: dict[str, Any] | None) -> dict[str, Any]:
    details = dict(details or {})
    if len(details) > DETAILS_MAX_KEYS:
        raise AuditDetailsInvalid(f"at most {DETAILS_MAX_KEYS} details, got {len(details)}")
    for key, value in details.items():
        if not isinstance(key, str) or not isinstance(value, DETAIL_SCALARS):
            raise AuditDetailsInvalid(f"details are flat str -> scalar; {key!r}: {type(value).__name__}")
        if isinstance(value, str):
            details[key] = value[:DETAIL_TEXT_MAX]
    return details


def audit_record(
    *,
    action: str,
    target: str,
    actor=None,
    actor_name: str = "",
    study_id: int | None = None,
    study_slug: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry and return it.

    Runs in the caller's transaction, so the entry exists exactly when the action it records
    committed. actor: the user who acted, or None; actor_name defaults to the user's username, or
    "system" without one (commands pass "manage.py"). study_id / study_slug: the study concerned,
    copied as values. details: a flat object of counts, flags and short reasons (texts cut at 300
    characters); never payloads or personal data. An unknown action or nested details raise ValueError.
    """
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}; add it to AuditAction")
    name = actor_name or (actor.get_username() if actor is not None else SYSTEM)
    entry = AuditEntry(
        actor=actor,
        actor_name=name[:150],
        action=action,
        study_id=study_id,
        study_slug=study_slug[:80],
        target=target[:300],
        details=_details_clean(details),
    )
    entry.full_clean()
    entry.save()
    return entry
