import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_perturbation_methods_and_faithfulness_import_no_django():
    code = (
        "import sys; import explain.methods.rise, explain.methods.lime, explain.methods.occlusion, "
        "explain.methods.fem, explain.methods.xrai, explain.methods.batching, explain.faithfulness; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
