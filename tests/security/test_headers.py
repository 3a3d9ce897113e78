"""Security headers on every kind of page, no inline script anywhere (the CSP forbids it), and
`manage.py check --deploy` clean under the production settings."""
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from annotations.services import participation
from tests.annotations.test_participation import tiny_study

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [folder for app in ("studyserver", "annotations", "explain", "analysis") for folder in (ROOT / app).rglob("templates")]
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.IGNORECASE)


def csp_parts(response) -> dict:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_secure_headers(response):
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = csp_parts(response)
    assert csp["default-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert any(source.startswith("'nonce-") for source in csp["script-src"])


def pages(client, researcher):
    study = tiny_study(researcher)
    participant, _ = participation.participant_start(study=study)
    done, _ = participation.participant_start(study=study)
    participation.participant_finish(participant=done)
    client.force_login(researcher)
    return {
        "consent": reverse("study-entry", args=[study.slug]),
        "task": reverse("participant-task", args=[participant.token]),
        "done": reverse("participant-done", args=[done.token]),
        "api": reverse("participant-trial-next", args=[participant.token]),
        "dashboard": reverse("dashboard-study", args=[study.slug]),
        "report": reverse("dashboard-report", args=[study.slug]),
        "docs": reverse("api-docs"),
        "schema": reverse("schema"),
        "health": reverse("healthz"),
    }


def test_every_kind_of_page_carries_the_headers(client, researcher):
    nonces = set()
    for name, url in pages(client, researcher).items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        assert_secure_headers(response)
        nonces.add(csp_parts(response)["script-src"][-1])
        if response["Content-Type"].startswith("text/html"):
            html = response.content.decode()
            assert not INLINE_SCRIPT.search(html), (name, INLINE_SCRIPT.search(html).group(0))
            assert not INLINE_HANDLER.search(html), (name, INLINE_HANDLER.search(html).group(0))
    assert len(nonces) == len(pages(client, researcher))  # a fresh nonce on every response


def test_no_template_has_an_inline_script_or_handler():
    templates = [path for folder in TEMPLATE_DIRS for path in folder.rglob("*.html")]
    assert len(templates) >= 10
    for path in templates:
        text = path.read_text()
        assert not INLINE_SCRIPT.search(text), (path, INLINE_SCRIPT.search(text).group(0))
        assert not INLINE_HANDLER.search(text), (path, INLINE_HANDLER.search(text).group(0))


def test_errors_carry_the_headers_too(client):
    response = client.get("/api/v1/participant/unknown-token/next/")
    assert response.status_code == 404
    assert_secure_headers(response)


def _production(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS")}
    env.update({"DJANGO_SETTINGS_MODULE": "studyserver.settings.production", "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "studies.example.org", "DATABASE_URL": "sqlite:////tmp/studyserver-deploy-check.sqlite3"})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_check_deploy_is_clean_under_production_settings():
    result = _production("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_sets_hsts_and_secure_cookies():
    code = ("from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, "
            "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_HTTPONLY, s.X_FRAME_OPTIONS)")
    result = _production("shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["31536000", "True", "True", "True", "True", "DENY"]
