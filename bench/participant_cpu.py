"""CPU per participant request, one at a time: what each endpoint costs the web tier, free of queueing.

    .venv/bin/python bench/participant_cpu.py [--participants 10] [--trials 10]

bench/load.py measures the platform under hundreds of participants, where latency is mostly waiting
for a CPU; this bench measures the CPU itself. It sets up a fresh PostgreSQL database and a live paint
study (as bench/load.py does), starts gunicorn with ONE worker process and ONE thread (production
settings, no Celery worker: the broker is in-memory, so map updates are queued and dropped), and takes
--participants participants through their sessions one request at a time with the paint payloads of
bench/load_users.py. For each endpoint it prints the requests, the wall time per request and the CPU
seconds the gunicorn worker spent (user + system, read from /proc around each request), and the
PostgreSQL CPU per request. Divide the cores by the CPU per response to get the most responses per
second the web tier could answer on this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import database_create, free_port, postgres_cpu, started, study_setup, tree_cpu, wait_port  # noqa: E402

PYTHON = sys.executable


def paint_payload_maker():
    """bench/load_users.py's paint payload, without importing locust (it patches the standard library)."""
    source = (ROOT / "bench" / "load_users.py").read_text()
    namespace = {"random": random}
    exec(source[source.index("def paint_strokes"):source.index("class Participant(")], namespace)  # noqa: S102
    return namespace["paint_payload"]


def call(method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as res:
        return res.status, res.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--trials", type=int, default=10, help="stimuli per participant (K)")
    args = parser.parse_args()
    paint_payload = paint_payload_maker()
    work = Path(tempfile.mkdtemp(prefix="participant-cpu-"))
    with ExitStack() as stack:
        database = database_create(stack, f"studyserver_cpu_{os.getpid()}")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings.production", "SECRET_KEY": uuid.uuid4().hex * 2,
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "DATABASE_URL": database,
               "CELERY_BROKER_URL": "memory://", "MEDIA_ROOT": str(work / "media"), "STATIC_ROOT": str(work / "static"),
               "STUDYSERVER_VAR_DIR": str(work / "var"), "LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1",
               # one client: the per-token rate limit would answer 429 to a fast sequential session
               "THROTTLE_PARTICIPANT": "100000/min", "THROTTLE_PARTICIPANT_START": "100000/min"}
        (work / "var").mkdir()
        os.environ.update(env)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        slug, n_stimuli = study_setup(users=args.participants, trials=args.trials, per_stimulus=args.participants)
        from django.db import connections

        connections.close_all()
        port = free_port()
        web = started(stack, [PYTHON, "-m", "gunicorn", "studyserver.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                              "--threads", "1", "--timeout", "60", "--preload"], env, work / "gunicorn.log")
        wait_port(port, 60, web)
        base = f"http://127.0.0.1:{port}"
        worker_pid = None
        for _ in range(50):
            children = __import__("psutil").Process(web.pid).children()
            if children:
                worker_pid = children[0].pid
                break
            time.sleep(0.1)
        for _ in range(5):  # warm up: imports, URL resolver, connection
            try:
                call("GET", f"{base}/api/v1/participant/warm-up/next/")
            except urllib.error.HTTPError:
                pass
        stats: dict[str, list[tuple[float, float, float]]] = {}

        def timed(name: str, method: str, url: str, body=None) -> bytes:
            cpu0, pg0, t0 = tree_cpu(worker_pid), postgres_cpu(), time.perf_counter()
            status, data = call(method, url, body)
            stats.setdefault(name, []).append((time.perf_counter() - t0, tree_cpu(worker_pid) - cpu0, postgres_cpu() - pg0))
            assert 200 <= status < 300, (name, status, data[:300])
            return data

        responses = 0
        for _ in range(args.participants):
            token = json.loads(timed("consent", "POST", f"{base}/api/v1/studies/{slug}/participants/",
                                     {"consent": True, "external_id": f"cpu-{uuid.uuid4().hex}"}))["token"]
            data = json.loads(timed("next", "GET", f"{base}/api/v1/participant/{token}/next/"))
            while not data["done"]:
                trial = data["trial"]
                timed("image", "GET", base + trial["image_url"])
                body = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload(trial), "duration_ms": 5000}
                answer = json.loads(timed("submit", "POST", f"{base}/api/v1/participant/{token}/trials/{trial['id']}/response/", body))
                responses += 1
                data = answer["next"] or json.loads(timed("next", "GET", f"{base}/api/v1/participant/{token}/next/"))
    print(f"\n{args.participants} participants x {args.trials} trials ({n_stimuli} stimuli), one request at a time; "
          f"gunicorn 1 worker x 1 thread, production settings")
    print(f"{'endpoint':<10}{'requests':>9}{'wall ms':>9}{'web CPU ms':>12}{'postgres CPU ms':>17}")
    total_cpu = total_pg = 0.0
    for name, rows in stats.items():
        wall, cpu, pg = (sum(r[i] for r in rows) for i in range(3))
        total_cpu, total_pg = total_cpu + cpu, total_pg + pg
        print(f"{name:<10}{len(rows):>9}{1000 * wall / len(rows):>9.1f}{1000 * cpu / len(rows):>12.1f}{1000 * pg / len(rows):>17.1f}")
    per = 1000 * total_cpu / max(responses, 1)
    print(f"per response (its submit and picture, plus its share of consent and next): web {per:.1f} ms CPU, "
          f"PostgreSQL {1000 * total_pg / max(responses, 1):.1f} ms CPU")
    print(f"=> at most {os.cpu_count() * 1000 / per:.0f} responses/s on {os.cpu_count()} cores if the web tier had them all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
