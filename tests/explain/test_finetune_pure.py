"""explain.finetune is a pure core: torch/numpy (scipy, Pillow; scikit-learn for the digits demo only),
no Django, and nothing from the analysis layer above it (the human side's pure cores below it, such as
the image conversion and the class names, are allowed)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["explain.finetune", "explain.finetune.harmonization", "explain.finetune.dataset", "explain.finetune.split",
           "explain.finetune.agreement", "explain.finetune.params", "explain.finetune.training", "explain.finetune.evaluation",
           "explain.finetune.double_backward", "explain.finetune.run", "explain.finetune.digits"]


def test_finetune_imports_no_django_and_no_analysis():
    code = (
        "import sys, importlib; [importlib.import_module(m) for m in %r]; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery', 'analysis')]; "
        "assert not bad, bad" % MODULES
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
