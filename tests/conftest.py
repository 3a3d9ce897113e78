"""Shared fixtures: researchers, studies with real photos, participants, and a real Celery worker."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studyserver.researcher.demo import demo_photo_bytes
from studyserver.researcher.services import studies

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    """Each test writes media into its own folder, shared with any worker it starts."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))
    yield


@pytest.fixture(autouse=True)
def _rate_limits_fresh():
    """Rate-limit counters (Django's cache) start empty in every test."""
    from django.core.cache import cache

    cache.clear()
    yield


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def researcher(django_user_model):
    return django_user_model.objects.create_user(username=f"r-{uuid.uuid4().hex[:8]}", password="pw-for-tests")


@pytest.fixture
def make_study(researcher):
    def make(*, photos=("chelsea.png", "coffee.png"), labels=(285, 967), launch=False, **fields):
        fields.setdefault("participants_per_stimulus", 3)
        fields.setdefault("stimuli_per_participant", max(1, len(photos)))
        study = studies.study_create(
            owner=researcher, slug=fields.pop("slug", f"s-{uuid.uuid4().hex[:10]}"), title="Test study", **fields
        )
        for filename, label in zip(photos, labels):
            studies.stimulus_create(study=study, data=demo_photo_bytes(filename), filename=filename, class_index=label)
        if launch:
            study = studies.study_launch(study=study)
        return study

    return make


def paint_payload(strokes, width=500, height=400):
    return {"display": {"width": width, "height": height, "dpr": 1}, "pointer_types": ["mouse"], "strokes": strokes}


def rect_stroke(x0, y0, x1, y1, radius=10.0):
    """A zig-zag stroke that paints roughly the rectangle [x0, x1] x [y0, y1]."""
    points, t, y, forward = [], 0, y0 + radius, True
    while y <= y1 - radius + 1e-9:
        xs = (x0 + radius, x1 - radius) if forward else (x1 - radius, x0 + radius)
        for x in xs:
            points.append([float(x), float(y), float(t)])
            t += 10
        y += radius
        forward = not forward
    return {"radius": radius, "erase": False, "points": points}


# --- a real Celery worker process -------------------------------------------------------------


def _broker_purge(url: str, prefix: str) -> None:
    """Drop this checkout's queued messages (and only its own: keys under its prefix)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def celery_worker_process(transactional_db, settings, request):
    """A real `celery worker` subprocess on Redis, against the test database and media folder.
    `@pytest.mark.worker_env(NAME="value")` adds to the worker's environment."""
    from django.db import connection

    broker = settings.CELERY_BROKER_URL
    _broker_purge(broker, settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"])
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studyserver.settings.test",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    marker = request.node.get_closest_marker("worker_env")
    env.update(marker.kwargs if marker else {})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"worker-{uuid.uuid4().hex[:6]}.log"
    log = open(log_path, "wb")
    argv = [sys.executable, "-m", "celery", "-A", "studyserver", "worker", "-Q", "explain,default", "-P", "solo",
            "-c", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"test-{uuid.uuid4().hex[:6]}@%h"]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = log_path
    yield process
    # The test is over: a warm shutdown would first finish whatever the worker runs (an insertion/
    # deletion map takes 20 s or more here); the next test purges the broker anyway.
    process.terminate()
    try:
        process.wait(3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def wait_for(predicate, *, timeout: float, interval: float = 0.25, what: str = "condition", process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"worker exited ({process.returncode}) while waiting for {what}; log: {process.log_path}")
        time.sleep(interval)
    tail = ""
    if process is not None:
        tail = Path(process.log_path).read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is not installed: run `make test` (it installs it) or .ci/browser-install")
    return path
