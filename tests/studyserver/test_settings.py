import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")}
    env.update({"DJANGO_SETTINGS_MODULE": "studyserver.settings.production", **env_extra})
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_refuses_without_secret_key():
    result = run_check({"ALLOWED_HOSTS": "example.org"})
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_production_refuses_debug():
    result = run_check({"SECRET_KEY": "x" * 60, "DEBUG": "1", "ALLOWED_HOSTS": "example.org"})
    assert result.returncode != 0 and "DEBUG must be off" in result.stderr


def test_production_starts_when_configured():
    result = run_check({"SECRET_KEY": "x" * 60, "DEBUG": "0", "ALLOWED_HOSTS": "example.org", "DATABASE_URL": "sqlite:////tmp/x.sqlite3"})
    assert result.returncode == 0, result.stderr


def test_pure_cores_import_no_django():
    code = (
        "import sys; import analysis.metrics, annotations.rasterize, analysis.aggregate, analysis.overlays, "
        "explain.methods, explain.pipeline, explain.zoo, annotations.images, annotations.payloads; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


LOCAL_PROBE = (
    "from django.conf import settings; from django.test import Client; c = Client(HTTP_HOST='localhost'); "
    "s = c.get('/static/studyserver/site.css'); a = c.get('/api/v1/no-such-endpoint/'); "
    "print(settings.DEBUG, s.status_code, a.status_code, a['Content-Type'], a.json()['error'])"
)


@pytest.mark.parametrize("debug, expected", [(None, "False"), ("1", "True")], ids=["unset", "DEBUG=1"])
def test_local_settings_run_with_debug_off_unless_asked(tmp_path, debug, expected):
    """The demo's settings: DEBUG off unless asked; static files served and API errors JSON either way."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DATABASE_URL", "STATIC_ROOT")}
    env.update({"DJANGO_SETTINGS_MODULE": "studyserver.settings.local", "STUDYSERVER_VAR_DIR": str(tmp_path),
                **({"DEBUG": debug} if debug else {})})
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", LOCAL_PROBE], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-5:] == [expected, "200", "404", "application/json", "not_found"], result.stdout
