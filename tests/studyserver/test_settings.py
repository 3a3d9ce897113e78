import os
import subprocess
import sys
from pathlib import Path

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
        "import sys; import analysis.metrics, analysis.rasterize, analysis.aggregate, analysis.overlays, "
        "explain.methods, explain.pipeline, explain.zoo, annotations.images, annotations.payloads; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
