"""The layers of docs/architecture.md hold: the import contracts (import-linter), model relations
that point only down the order, and a web process that never loads torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
# Lower number = lower layer (docs/architecture.md). Django's own apps sit below everything.
LAYER = {"admin": 0, "auth": 0, "contenttypes": 0, "sessions": 0, "authtoken": 0, "audit": 1, "annotations": 2,
         "explain": 3, "analysis": 4, "researcher": 5}


def test_the_import_contracts_hold():
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_model_relation_points_down_the_layers():
    upward = []
    for model in apps.get_models():
        source = model._meta.app_label
        for field in model._meta.get_fields():
            if field.is_relation and field.concrete and field.related_model is not None:
                target = field.related_model._meta.app_label
                if LAYER[target] > LAYER[source]:
                    upward.append(f"{model._meta.label}.{field.name} -> {field.related_model._meta.label}")
    assert upward == []


def test_no_app_looks_models_up_by_name():
    """`apps.get_model` would hide a relation from the import contracts."""
    hits = [str(p.relative_to(ROOT)) for folder in ("annotations", "explain", "analysis", "studyserver")
            for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts and "get_model(" in p.read_text()]
    assert hits == []


@pytest.mark.slow
def test_the_web_process_and_every_view_leave_torch_unloaded(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'probe.sqlite3'}", "MEDIA_ROOT": str(tmp_path / "media"),
           "DJANGO_SETTINGS_MODULE": "studyserver.settings.test", "PYTHONPATH": str(ROOT), "ALLOWED_HOSTS": "localhost"}
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "studyserver" / "web_probe.py")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    answered = report["requested"]
    assert len(answered) >= 70, answered
    assert not [path for path, code in answered.items() if code >= 500], answered
    # the probe saw real pages, not only refusals: most researcher and participant pages answer 2xx/3xx
    assert sum(code < 400 for code in answered.values()) >= 50, answered
    assert report["loaded"] == []
