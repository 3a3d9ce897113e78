"""Load: hundreds of participants taking whole sessions at once, over HTTP, on the real stack.

    .venv/bin/python bench/load.py [--users 500] [--spawn-rate 50] [--duration 300] [--trials 20]
                                   [--per-stimulus 50] [--think 1.0-3.0] [--web-workers 4] [--json PATH]

Sets up everything itself on loopback and tears it down: a private redis-server on a free port (broker),
a fresh PostgreSQL database (migrated), a live paint study sized so every participant can finish
(stimuli = ceil(users * trials / per-stimulus) distinct photos), gunicorn (gthread, --web-workers x 4
threads, production settings), and a real Celery worker (`default` queue, concurrency 2, with the beat that runs
the periodic sweep, as docker-compose.yml's CPU worker). Locust (headless, bench/load_users.py) ramps --users participants up at --spawn-rate;
each consents, then [next trial, its image, --think seconds, submit a raw paint payload] until done.

Prints per-endpoint p50/p95/p99 latency and errors, sustained responses/s (the median of the
per-second rates while every user is running, and the overall mean), and a count check after the
worker drained: responses stored == responses acknowledged, no duplicate client UUIDs, no stimulus
over its N, every averaged human map equal to a rebuild from the raw responses (bit for bit).
Exit status 1 if a check fails.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def started(stack: ExitStack, argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = open(log, "wb")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop():
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        handle.close()

    stack.callback(stop)
    return process


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (gunicorn's and celery's workers)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_cpu() -> float:
    """CPU seconds of every live PostgreSQL process (the run's connections are persistent)."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] and process.info["name"].startswith("postgres"):
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
    return total


def warm_up(port: int, slug: str, workers: int) -> None:
    """Until every gunicorn worker answers quickly (they import the app after the port opens)."""
    import urllib.error
    import urllib.request

    fast, deadline = 0, time.monotonic() + 120
    while fast < 4 * workers and time.monotonic() < deadline:
        t = time.monotonic()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/participant/warm-up/next/", timeout=30)
        except urllib.error.HTTPError:
            pass  # 404: the app answered
        fast = fast + 1 if time.monotonic() - t < 0.2 else 0


def database_create(stack: ExitStack, name: str) -> str:
    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.callback(drop)
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def photo(i: int, width: int = 500, height: int = 375) -> bytes:
    """A distinct photo-like image: one of scikit-image's photos, shifted and tinted by i."""
    import io

    import numpy as np
    from PIL import Image
    from skimage import data

    sources = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    base = np.asarray(Image.fromarray(sources[i % len(sources)]).resize((width, height)))
    rng = np.random.default_rng(i)
    image = np.clip(np.roll(base, (i * 7) % width, axis=1).astype(np.int16) + rng.integers(-12, 13, 3), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def study_setup(*, users: int, trials: int, per_stimulus: int) -> tuple[str, int]:
    """A live paint study where `users` participants can each answer `trials` stimuli."""
    from django.contrib.auth import get_user_model

    from studyserver.researcher.services import studies

    n_stimuli = math.ceil(users * trials / per_stimulus) + 2
    owner = get_user_model().objects.create_user(username=f"load-{uuid.uuid4().hex[:6]}", password="load-bench-pw")
    study = studies.study_create(owner=owner, title="Load bench", slug=f"load-{uuid.uuid4().hex[:8]}",
                                 participants_per_stimulus=per_stimulus, stimuli_per_participant=trials)
    for i in range(n_stimuli):
        studies.stimulus_create(study=study, data=photo(i), filename=f"photo-{i}.png", class_index=285)
    study = studies.study_launch(study=study)
    return study.slug, n_stimuli


def drained(slug: str, broker: str, timeout: float) -> float:
    """Queue the sweep's work and wait until no map misses a response and the queue is empty; seconds."""
    import redis

    from analysis.services import maps
    from annotations.models import Study

    study = Study.objects.get(slug=slug)
    client = redis.Redis.from_url(broker)
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        pending = maps.maps_pending(study=study)
        if not pending and client.llen("default") == 0:
            return time.monotonic() - start
        if pending and client.llen("default") == 0:
            maps.maps_pending_queue(study=study)
        time.sleep(1)
    raise RuntimeError(f"maps still pending after {timeout} s: {maps.maps_pending(study=study)[:5]}")


def checks(slug: str, acks: list, in_flight: list) -> dict:
    from django.db.models import Count, Q

    from analysis.models import HumanMap
    from analysis.services import maps
    from annotations.models import Response, Stimulus, Trial

    acked = {u for u, _, _ in acks}
    stored = set(str(u) for u in Response.objects.filter(trial__participant__study__slug=slug).values_list("client_uuid", flat=True))
    study_stimuli = Stimulus.objects.filter(study__slug=slug)
    n = study_stimuli.first().study.participants_per_stimulus
    over = study_stimuli.annotate(done=Count("trials", filter=Q(trials__status=Trial.Status.DONE))).filter(done__gt=n).count()
    human_maps = list(HumanMap.objects.filter(stimulus__study__slug=slug).select_related("stimulus__study"))
    mismatched = [m.pk for m in human_maps if not maps.human_map_matches_raw(m)]
    return {
        "acknowledged": len(acked),
        "acknowledged_requests": len(acks),
        "stored": len(stored),
        "lost": len(acked - stored),
        # Stored, but the run ended (or the client gave up) before the answer reached it: fine only
        # for submits still in flight when the run stopped (they would be retried and acknowledged).
        "stored_not_acknowledged": len(stored - acked),
        "stored_in_flight_at_stop": len((stored - acked) & set(in_flight)),
        "stored_never_sent": len(stored - acked - set(in_flight)),
        "duplicate_uuids_acked": len(acks) - len(acked),
        "duplicate_responses_per_trial": Response.objects.filter(trial__participant__study__slug=slug).values("trial").annotate(c=Count("id")).filter(c__gt=1).count(),
        "stimuli_over_n": over,
        "maps": len(human_maps),
        "maps_not_equal_to_rebuild": len(mismatched),
        "responses_folded": sum(m.n_participants for m in human_maps),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rates(acks: list, spawned_at: float | None) -> dict:
    """Sustained = median per-second ack rate from full ramp-up until the first 10% of the acks are left."""
    times = sorted(t for _, _, t in acks)
    if len(times) < 2:
        return {"sustained_per_s": 0.0, "mean_per_s": 0.0}
    t0 = times[0]
    seconds: dict[int, int] = {}
    for t in times:
        seconds[int(t - t0)] = seconds.get(int(t - t0), 0) + 1
    start = int((spawned_at - t0)) + 1 if spawned_at else 0
    end = int(times[int(0.9 * (len(times) - 1))] - t0)
    window = [seconds.get(s, 0) for s in range(max(0, start), max(start + 1, end))]
    return {"sustained_per_s": statistics.median(window) if window else 0.0,
            "mean_per_s": len(times) / max(times[-1] - t0, 1e-9), "window_s": len(window)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--spawn-rate", type=float, default=50)
    parser.add_argument("--duration", type=int, default=300, help="cap in seconds (the run ends when every session is done)")
    parser.add_argument("--trials", type=int, default=20, help="stimuli per participant (K)")
    parser.add_argument("--per-stimulus", type=int, default=50, help="participants per stimulus (N)")
    parser.add_argument("--think", default="1.0-3.0", help="seconds between seeing a trial and submitting it, min-max")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, work, True)
        redis_port, web_port = free_port(), free_port()
        redis_proc = started(stack, ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                                     "--appendonly", "no"], dict(os.environ), work / "redis.log")
        wait_port(redis_port, 10, redis_proc)
        broker = f"redis://127.0.0.1:{redis_port}/0"
        database = database_create(stack, f"studyserver_load_{os.getpid()}")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings.production", "SECRET_KEY": uuid.uuid4().hex * 2,
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "DATABASE_URL": database,
               "CELERY_BROKER_URL": broker, "MEDIA_ROOT": str(work / "media"), "STATIC_ROOT": str(work / "static"),
               "STUDYSERVER_VAR_DIR": str(work / "var"), "LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1"}
        (work / "var").mkdir()
        os.environ.update(env)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        t = time.monotonic()
        slug, n_stimuli = study_setup(users=args.users, trials=args.trials, per_stimulus=args.per_stimulus)
        print(f"study {slug}: {n_stimuli} stimuli, N={args.per_stimulus}, K={args.trials} ({time.monotonic() - t:.0f} s to set up)", flush=True)
        from django.db import connections

        connections.close_all()
        web = started(stack, [PYTHON, "-m", "gunicorn", "studyserver.wsgi", "--bind", f"127.0.0.1:{web_port}",
                              "--workers", str(args.web_workers), "--threads", "4", "--timeout", "60",
                              "--backlog", "2048", "--keep-alive", "30", "--preload"], env, work / "gunicorn.log")
        # As docker-compose.yml's CPU worker: the default queue, concurrency 2, with the beat (the sweep).
        worker = started(stack, [PYTHON, "-m", "celery", "-A", "studyserver", "worker", "-B", "-Q", "default",
                                 "-c", "2", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
                                 "-s", str(work / "var" / "beat-schedule"), "-n", f"load-{uuid.uuid4().hex[:6]}@%h"],
                         env, work / "worker.log")
        wait_port(web_port, 30, web)
        warm_up(web_port, slug, args.web_workers)
        out = work / "locust-out.json"
        locust_env = {**env, "LOAD_SLUG": slug, "LOAD_OUT": str(out), "LOAD_THINK": args.think, "LOAD_USERS": str(args.users)}
        cpu_before = {"web": tree_cpu(web.pid), "worker": tree_cpu(worker.pid), "postgres": postgres_cpu()}
        began = time.monotonic()
        locust = subprocess.Popen([PYTHON, "-m", "locust", "-f", str(ROOT / "bench" / "load_users.py"), "--headless",
                                   "--host", f"http://127.0.0.1:{web_port}", "-u", str(args.users), "-r", str(args.spawn_rate),
                                   "-t", f"{args.duration}s", "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "30"],
                                  cwd=ROOT, env=locust_env, stdout=open(work / "locust.log", "wb"), stderr=subprocess.STDOUT)
        _, _, usage = os.wait4(locust.pid, 0)
        locust.returncode = 0
        elapsed = time.monotonic() - began
        cpu = {"web": tree_cpu(web.pid) - cpu_before["web"], "worker": tree_cpu(worker.pid) - cpu_before["worker"],
               "postgres": postgres_cpu() - cpu_before["postgres"], "locust": usage.ru_utime + usage.ru_stime}
        result = json.loads(out.read_text())
        drain_s = drained(slug, broker, timeout=600)
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}); see {work / 'worker.log'}")
        count = checks(slug, result["acks"], result.get("in_flight", []))
        first_ack = min((t for _, _, t in result["acks"]), default=None)
        ramp_end = first_ack + args.users / args.spawn_rate if first_ack else None
        rate = rates(result["acks"], ramp_end)
    report = {"users": args.users, "spawn_rate": args.spawn_rate, "trials": args.trials, "per_stimulus": args.per_stimulus,
              "think_s": args.think, "web_workers": args.web_workers, "stimuli": n_stimuli, "run_s": round(elapsed, 1),
              "drain_s": round(drain_s, 1), "sessions": result["sessions"], **rate, "counts": count,
              "cpu_s": {k: round(v, 1) for k, v in cpu.items()}, "cores": os.cpu_count(),
              "errors": result.get("errors", {}),
              "endpoints": {name: {"requests": len(v), "errors": result["failures"].get(name, 0),
                                   "p50_ms": percentile(v, 50), "p95_ms": percentile(v, 95), "p99_ms": percentile(v, 99)}
                            for name, v in sorted(result["latency_ms"].items())}}
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    c = count
    ok = c["lost"] == 0 and c["duplicate_uuids_acked"] == 0 and c["duplicate_responses_per_trial"] == 0 \
        and c["stimuli_over_n"] == 0 and c["maps_not_equal_to_rebuild"] == 0 and c["stored_never_sent"] == 0
    print("count check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def print_report(r: dict) -> None:
    print(f"\n{r['users']} participants x {r['trials']} trials, spawn {r['spawn_rate']}/s, think {r['think_s']} s, "
          f"{r['web_workers']} gunicorn workers x 4 threads; run {r['run_s']} s, worker drained {r['drain_s']} s after")
    print(f"{'endpoint':<10}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, e in r["endpoints"].items():
        print(f"{name:<10}{e['requests']:>10}{e['errors']:>8}{e['p50_ms']:>9.1f}{e['p95_ms']:>9.1f}{e['p99_ms']:>9.1f}")
    cpu = r["cpu_s"]
    print(f"CPU seconds during the run ({r['run_s']} s x {r['cores']} cores = {r['run_s'] * r['cores']:.0f} available): "
          + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()) + "; per acknowledged response: "
          + ", ".join(f"{k} {1000 * v / max(r['counts']['acknowledged'], 1):.1f} ms" for k, v in cpu.items()))
    print(f"responses/s sustained (median of per-second rates, all users on): {r['sustained_per_s']:.0f}; "
          f"mean over the run: {r['mean_per_s']:.0f}")
    for kind, n in sorted(r["errors"].items(), key=lambda kv: -kv[1])[:6]:
        print(f"  error x{n}: {kind}")
    c = r["counts"]
    print(f"sessions started {r['sessions']['started']}, finished {r['sessions']['done']}")
    print(f"acknowledged {c['acknowledged']}  stored {c['stored']}  lost {c['lost']}  "
          f"stored-not-acked {c['stored_not_acknowledged']} (all in flight when the run stopped: "
          f"{c['stored_not_acknowledged'] == c['stored_in_flight_at_stop']})  "
          f"duplicate UUIDs {c['duplicate_uuids_acked']}  trials answered twice {c['duplicate_responses_per_trial']}  "
          f"stimuli over N {c['stimuli_over_n']}  maps {c['maps']} (folded {c['responses_folded']})  "
          f"maps != rebuild {c['maps_not_equal_to_rebuild']}")


if __name__ == "__main__":
    sys.exit(main())
