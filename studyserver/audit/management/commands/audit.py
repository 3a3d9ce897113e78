"""Print the audit log, newest first: `manage.py audit [--study SLUG] [--action ACTION] [--limit N] [--json]`."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from ...models import AuditAction
from ...selectors import audit_entries


class Command(BaseCommand):
    help = "Print the audit log (who deleted, archived, restored, erased, excluded what, and when), newest first."

    def add_arguments(self, parser):
        parser.add_argument("--study", default="", help="only entries of the study with this slug (as recorded)")
        parser.add_argument("--action", default="", help=f"only this action: {', '.join(AuditAction.values)}")
        parser.add_argument("--limit", type=int, default=100, help="at most this many entries (default 100)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")

    def handle(self, *args, study: str, action: str, limit: int, as_json: bool, **options):
        if action and action not in AuditAction.values:
            raise CommandError(f"unknown action {action!r}; one of {', '.join(AuditAction.values)}")
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        for entry in audit_entries(study_slug=study, action=action)[:limit]:
            row = {"at": entry.at.isoformat(), "actor": entry.actor_name, "action": entry.action,
                   "study_id": entry.study_id, "study": entry.study_slug, "target": entry.target, "details": entry.details}
            self.stdout.write(_json_line(row) if as_json else _text_line(row))


def _json_line(row: dict) -> str:
    return json.dumps(row, sort_keys=True)


def _text_line(row: dict) -> str:
    details = ", ".join(f"{key}={value}" for key, value in sorted(row["details"].items()))
    return f"{row['at']}  {row['actor']}  {row['action']}  {row['target']}" + (f"  [{details}]" if details else "")
