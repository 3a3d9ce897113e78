"""`manage.py researcher`: an administrator creates and manages researchers without the Django
admin; each change is in the audit log as done by "manage.py", never with a password or token."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from studyserver.audit.models import AuditEntry
from studyserver.researcher.services import studies

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args, stdin: str | None = None, monkeypatch=None) -> str:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("researcher", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def audit() -> list[tuple[str, str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("action", "actor_name", "target"))


def test_create_prints_a_random_password_that_logs_in(django_user_model):
    out = run("create", "alice", "--email", "alice@lab.example")
    password = out.split("password: ")[1].strip()
    assert len(password) >= 20
    user = django_user_model.objects.get(username="alice")
    assert (user.email, user.is_active, user.is_staff) == ("alice@lab.example", True, False)
    assert authenticate(username="alice", password=password) == user
    assert audit() == [("researcher_created", "manage.py", "researcher alice")]
    assert password not in str(AuditEntry.objects.get().details)


def test_create_reads_the_password_from_stdin_and_refuses_weak_ones_and_taken_names(django_user_model, monkeypatch):
    out = run("create", "bob", "--password-stdin", stdin="Lichen-Harbour-77\n", monkeypatch=monkeypatch)
    assert "password:" not in out and authenticate(username="bob", password="Lichen-Harbour-77") is not None
    with pytest.raises(CommandError, match="too common|too short"):
        run("create", "carol", "--password-stdin", stdin="password\n", monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="exists already"):
        run("create", "bob")
    with pytest.raises(CommandError, match="no password"):
        run("create", "dave", "--password-stdin", stdin="", monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="[Ee]nter a valid"):
        run("create", "bad name!")
    assert list(django_user_model.objects.values_list("username", flat=True)) == ["bob"]
    assert len(audit()) == 1


def test_deactivate_shuts_the_api_and_login_and_activate_undoes_it(django_user_model):
    password = run("create", "erin").split("password: ")[1].strip()
    key = run("token", "erin").strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/studies/").status_code == 200

    assert run("deactivate", "erin").strip() == "deactivated erin"
    assert client.get("/api/v1/studies/").status_code == 401
    assert not Token.objects.filter(user__username="erin").exists()
    assert authenticate(username="erin", password=password) is None
    assert run("deactivate", "erin").strip() == "erin was deactivated already"
    with pytest.raises(CommandError, match="deactivated; activate them first"):
        run("token", "erin")

    assert run("activate", "erin").strip() == "activated erin"
    assert authenticate(username="erin", password=password) is not None
    assert [a for a, _, _ in audit()] == ["researcher_created", "researcher_token_created", "researcher_deactivated",
                                          "researcher_activated"]


def test_set_password_and_token(django_user_model, monkeypatch):
    run("create", "frank")
    new = run("set-password", "frank").split("password: ")[1].strip()
    assert authenticate(username="frank", password=new) is not None
    run("set-password", "frank", "--password-stdin", stdin="Quartz-Meadow-5150\n", monkeypatch=monkeypatch)
    assert authenticate(username="frank", password="Quartz-Meadow-5150") is not None
    first = run("token", "frank").strip()
    assert run("token", "frank").strip() == first  # the current one, not a new one
    rotated = run("token", "frank", "--rotate").strip()
    assert rotated != first and Token.objects.get(user__username="frank").key == rotated
    with pytest.raises(CommandError, match="no researcher named 'nobody'"):
        run("set-password", "nobody")
    assert [a for a, _, _ in audit()] == ["researcher_created", "researcher_password_set", "researcher_password_set",
                                          "researcher_token_created", "researcher_token_created"]
    assert not any(secret in str(entry) for entry in AuditEntry.objects.values() for secret in (first, rotated, new))


def test_list_shows_each_account_with_its_studies(django_user_model):
    run("create", "gina")
    run("create", "hank")
    gina = django_user_model.objects.get(username="gina")
    study = studies.study_create(owner=gina, title="Gina's")
    studies.study_share_set(study=study, username="hank", role="view")
    run("deactivate", "hank")
    lines = run("list").splitlines()
    assert lines[0].split() == ["name", "active", "staff", "email", "owns", "shared", "token", "last", "login"]
    rows = {line.split()[0]: line.split()[1:7] for line in lines[1:]}
    assert rows["gina"] == ["yes", "no", "-", "1", "0", "none"]
    assert rows["hank"] == ["no", "no", "-", "0", "1", "none"]


def test_the_command_line_lists_the_subcommands_and_names_a_missing_argument():
    """As a real process (a subprocess does not see the test's transaction: usage and errors only)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings.test"}
    result = subprocess.run([sys.executable, "manage.py", "researcher", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0
    for word in ("create", "list", "deactivate", "activate", "set-password", "token"):
        assert word in result.stdout
    result = subprocess.run([sys.executable, "manage.py", "researcher", "create"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode != 0 and "name" in result.stderr
