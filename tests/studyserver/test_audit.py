"""The audit log (studyserver.audit): what an entry holds, that it outlives its user and its study,
that nothing changes it (the admin is read-only), the exclusions written to it, `manage.py audit`,
and that the app sits below the apps (it imports none of them)."""
from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from annotations.models import Participant
from annotations.services import participation
from studyserver.audit.models import AuditAction, AuditEntry
from studyserver.audit.selectors import audit_entries
from studyserver.audit.services import AuditDetailsInvalid, audit_record
from studyserver.researcher.services import studies
from tests.annotations.test_participation import answer_all, paint, tiny_study

pytestmark = pytest.mark.django_db

AUDIT_DIR = Path(__file__).resolve().parents[2] / "studyserver" / "audit"


def test_an_entry_copies_who_and_which_study_and_keeps_only_small_flat_details(researcher):
    entry = audit_record(action=AuditAction.STUDY_ARCHIVED, actor=researcher, study_id=7, study_slug="pilot",
                         target="study pilot", details={"stimuli": 3, "reason": "x" * 1000, "ok": True, "none": None})
    assert (entry.actor_name, entry.study_id, entry.study_slug) == (researcher.username, 7, "pilot")
    assert entry.details["reason"] == "x" * 300 and entry.details["stimuli"] == 3
    assert audit_record(action="study_restored", target="study pilot").actor_name == "system"
    with pytest.raises(AuditDetailsInvalid):
        audit_record(action="study_deleted", target="t", details={"payload": {"strokes": []}})
    with pytest.raises(AuditDetailsInvalid):
        audit_record(action="study_deleted", target="t", details={"points": [1, 2]})
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record(action="study_renamed", target="t")
    assert AuditEntry.objects.count() == 2


def test_an_entry_outlives_its_user_and_its_study(make_study, django_user_model, django_capture_on_commit_callbacks):
    owner = django_user_model.objects.create_user(username="short-lived")
    study = studies.study_create(owner=owner, title="Doomed")
    with django_capture_on_commit_callbacks(execute=True):
        studies.study_delete(study=study, actor=owner, confirm=study.slug)
    owner.delete()
    entry = AuditEntry.objects.get()
    assert entry.actor is None and entry.actor_name == "short-lived"
    assert (entry.action, entry.study_slug) == ("study_deleted", "doomed")
    assert list(audit_entries(study_slug="doomed")) == [entry]


def test_the_admin_shows_the_log_and_changes_nothing(django_user_model, researcher):
    admin = django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    entry = audit_record(action=AuditAction.STUDY_ARCHIVED, actor=researcher, study_id=1, study_slug="pilot", target="study pilot")
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/audit/auditentry/")
    assert listing.status_code == 200 and b"pilot" in listing.content
    assert b"delete_selected" not in listing.content
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    change = client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"target": "rewritten", "actor_name": "x"})
    assert change.status_code == 403
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.target == "study pilot" and AuditEntry.objects.count() == 1


def test_exclusions_are_logged_automatic_ones_without_an_actor(researcher, django_user_model):
    study = tiny_study(researcher, n_main=1, catch_boxes=([0, 0, 32, 48],), participants_per_stimulus=2, stimuli_per_participant=1)
    failing, _ = participation.participant_start(study=study)
    answer_all(failing, lambda t: paint((34, 0, 64, 48)))  # the catch trial's wrong half
    failing.refresh_from_db()
    assert failing.status == Participant.Status.EXCLUDED
    automatic = AuditEntry.objects.get()
    assert (automatic.action, automatic.actor, automatic.actor_name) == ("participant_excluded", None, "system")
    assert (automatic.study_id, automatic.study_slug, automatic.target) == (study.pk, study.slug, f"participant {failing.pk}")
    assert "0 of 1 catch trials passed" in automatic.details["reason"]

    other, _ = participation.participant_start(study=study)
    participation.participant_exclude(participant=other, reason="scribbled", actor=researcher)
    participation.participant_exclude(participant=other, reason="again", actor=researcher)  # idempotent: no entry
    by_researcher = AuditEntry.objects.exclude(pk=automatic.pk).get()
    assert (by_researcher.actor, by_researcher.details) == (researcher, {"reason": "scribbled"})


def test_the_admin_exclude_action_names_the_researcher(make_study, django_user_model):
    admin = django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    study = make_study(launch=True)
    participant, _ = participation.participant_start(study=study)
    client = Client()
    client.force_login(admin)
    answer = client.post("/admin/annotations/participant/", {"action": "exclude", "_selected_action": [participant.pk]})
    assert answer.status_code == 302
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.details["reason"]) == (admin, "participant_excluded", "excluded by root")


def test_manage_py_audit_prints_the_log_filtered(researcher):
    audit_record(action=AuditAction.STUDY_ARCHIVED, actor=researcher, study_id=1, study_slug="pilot", target="study pilot",
                 details={"participants": 12})
    audit_record(action=AuditAction.STUDY_DELETED, actor=researcher, study_id=2, study_slug="draft-2", target="study draft-2")
    out = io.StringIO()
    call_command("audit", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "study_deleted" in lines[0] and "participants=12" in lines[1]
    out = io.StringIO()
    call_command("audit", "--study", "pilot", "--json", stdout=out)
    [row] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (row["action"], row["actor"], row["details"]) == ("study_archived", researcher.username, {"participants": 12})
    with pytest.raises(Exception, match="unknown action"):
        call_command("audit", "--action", "nothing")


def test_the_audit_app_imports_none_of_the_apps():
    for path in AUDIT_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                assert name.split(".")[0] not in ("annotations", "explain", "analysis"), (path, name)
