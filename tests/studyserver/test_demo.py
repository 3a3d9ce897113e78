"""`make demo` runs `manage.py demo`: the embedded default (SQLite, filesystem broker, real worker
processes) from nothing, and Ctrl-C stops the web server and the workers together."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_env(var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "STATIC_ROOT")}
    env.update({"DJANGO_SETTINGS_MODULE": "studyserver.settings.local", "STUDYSERVER_VAR_DIR": str(var_dir)})
    return env


def test_demo_check_computes_real_gradcam_maps_on_the_embedded_stack(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "demo", "--check", "--port", str(free_port()), "--password", "pw-demo-123"],
        cwd=ROOT, env=embedded_env(tmp_path), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo check passed: 7 Grad-CAM maps" in result.stdout
    assert "Log in as:            researcher / pw-demo-123" in result.stdout
    assert (tmp_path / "db.sqlite3").exists() and any((tmp_path / "media" / "modelmaps").rglob("*.npy"))


def test_ctrl_c_stops_the_web_server_and_the_workers(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port)], cwd=ROOT, env=embedded_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines, deadline = [], time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    output = "".join(lines)
    pids = [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", output)]
    assert len(pids) == 3, output
    with socket.create_connection(("127.0.0.1", port), timeout=30):
        pass
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest[-2000:]
    assert "stopped web, worker-explain, worker" in rest
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
