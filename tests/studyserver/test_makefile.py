"""`make` builds the virtual environment with the newest Python of 3.13, 3.12, 3.11 that really runs
here (a pyenv shim is on PATH for versions it does not have), `PYTHON=` overrides it, and with none
it stops with a message that says what to install."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("python3.13", "python3.12", "python3.11")


def fake_pythons(folder: Path, working: set[str]) -> Path:
    """python3.13/3.12/3.11 in `folder`: the working ones run this interpreter, the others answer
    as a pyenv shim does for a version it lacks."""
    folder.mkdir()
    for name in NAMES:
        body = f'exec {sys.executable} "$@"' if name in working else f'echo "pyenv: {name}: command not found" >&2; exit 127'
        script = folder / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return folder


def make(tmp_path: Path, working: set[str], *args: str, dry_run: bool = True) -> subprocess.CompletedProcess:
    folder = fake_pythons(tmp_path / "bin", working)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "PYTHONS", "VENV", "MAKEFLAGS")}
    env["PATH"] = f"{folder}:{env['PATH']}"
    command = ["make", *(["-n"] if dry_run else []), "setup", f"VENV={tmp_path / 'venv'}", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def venv_python(result: subprocess.CompletedProcess) -> str:
    found = re.search(r"\|\| (\S+) -m venv ", result.stdout)
    assert found, result.stdout + result.stderr
    return found.group(1)


@pytest.mark.parametrize("working, chosen", [
    ({"python3.13", "python3.12", "python3.11"}, "python3.13"),
    ({"python3.12", "python3.11"}, "python3.12"),
    ({"python3.11"}, "python3.11"),
], ids=["3.13", "3.12", "3.11"])
def test_the_newest_python_that_runs_is_chosen(tmp_path, working, chosen):
    assert venv_python(make(tmp_path, working)) == chosen


def test_python_can_be_named(tmp_path):
    assert venv_python(make(tmp_path, set(NAMES), "PYTHON=python3.11")) == "python3.11"


def test_without_a_python_make_says_what_to_install(tmp_path):
    result = make(tmp_path, set(), dry_run=False)
    assert result.returncode != 0
    assert "none of python3.13 python3.12 python3.11 runs here" in result.stderr, result.stderr
    assert "apt install python3.12-venv python3.12-dev" in result.stderr and "PYTHON=" in result.stderr
    assert not (tmp_path / "venv").exists()
