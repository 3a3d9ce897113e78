"""The import core is pure: importing it pulls in no Django (it runs in the web process, a worker or
the command alike)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_core_imports_no_django():
    code = ("import sys, analysis.human_data, analysis.recipes; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery', 'torch')]; "
            "assert not bad, bad")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
