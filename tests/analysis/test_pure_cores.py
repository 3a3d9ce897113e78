"""The analysis cores are plain numpy/scipy/torch/matplotlib: importing them pulls in no Django."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = ["metrics", "rasterize", "aggregate", "recipes", "scoring", "reliability", "statistics", "reports", "figures",
        "overlays"]


def test_pure_analysis_modules_import_no_django():
    code = (
        "import sys, importlib; [importlib.import_module('analysis.' + m) for m in %r]; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; assert not bad, bad" % PURE
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
