"""Load: hundreds of participants taking whole sessions at once, over HTTP, on the real stack.

    .venv/bin/python bench/load.py [--users 500 --arrive 120] [--trials 20] [--per-stimulus 50] [--think 8-20]
                                   [--sweep 100,200,300,... --ramp 15 --hold 60] [--slo-ms 500]
                                   [--generator async|locust] [--web-workers 4 --threads 4] [--cache redis|locmem]
                                   [--profile DIR] [--json PATH] [--keep]

Sets up everything itself on loopback and tears it down: a private redis-server on a free port (the
broker, and, with --cache redis as in docker-compose.yml, the rate-limit cache), a fresh PostgreSQL
database (migrated), a live paint study sized so every participant can finish (stimuli =
ceil(participants * K / N) + 2 distinct 500 x 375 photos), gunicorn (gthread, --web-workers x
--threads, production settings), and a real Celery worker (`default` queue, concurrency 2, with the
beat that runs the periodic sweep, as docker-compose.yml's CPU worker).

The launch (default): --users participants arrive at random over --arrive seconds (a recruiter's
launch: 500 over 2 minutes), each consents, then [next trial, its image, paints for --think seconds
(uniform), submits a raw paint payload; the answer carries the next trial] until done. Submits failing
with 5xx / 429 / connection errors are retried with the same client UUID, as the page does.
The sweep (--sweep C1,C2,...): a closed loop of C participants at a time, raised step by step (each
step --ramp s to add them, then --hold s measured); a finished participant is replaced at once, so in
the steady state participants arrive at about responses/s / K. It stops after the first step whose
p99 submit is over --slo-ms: the saturation point, with the CPU of every process there.

The generator (--generator): `async` (bench/loadgen.py: one asyncio process, raw keep-alive HTTP,
pre-encoded paint bodies; the default, because locust's own CPU per response competes with the stack
on a small machine) or `locust` (bench/load_users.py, launch only). Its CPU is reported like the rest.

Prints per-endpoint p50/p95/p99 latency and errors, requests given up after retries, sustained
responses/s (the median of the per-second rates once everyone arrived, and the overall mean), the CPU
each process spent during the run (web = gunicorn, worker = Celery with its pool and beat, postgres =
the backends of the bench's database only, redis, generator; from /proc schedstat, in cores and ms per
acknowledged response), the worker's CPU per folded response (over the run and the drain, divided by
the responses folded into maps), the gunicorn workers' resident memory, a timeline (30 s windows: or
the sweep's steps) of responses/s, p50/p99 submit, p99 next and each process's cores, then a count
check after the worker drained: responses stored == responses acknowledged, no duplicate client
UUIDs, no trial answered twice, no stimulus over its N, every averaged human map equal to a rebuild
from the raw responses (bit for bit); and issue 12's targets, met or not.
--profile DIR: py-spy on gunicorn (--gil --subprocesses) and on each Celery process (without --gil:
numpy's loops release it) for the run and the drain; DIR/web.raw, DIR/worker-<pid>.raw (one per Celery process), DIR/top.txt (top
frames per view and per task, bench/profile_top.py).
Exit status 1 if a count check fails.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
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
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))  # after the project: bench/analysis.py must not hide the analysis app
PYTHON = sys.executable

import procstat  # noqa: E402
import profile_top  # noqa: E402


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


def gc_total_ms(folder: Path) -> float:
    """The garbage collector's CPU so far in every gunicorn worker (bench/gc_probe.py's totals), ms."""
    total = 0.0
    for path in folder.glob("gc-*.tsv"):
        lines = path.read_text().splitlines()
        if lines:
            total += float(lines[-1].split("\t")[5])
    return total


def gunicorn_workers(master: int) -> list[int]:
    return procstat.children(master)


def window_stats(requests: list, t0: float, t1: float) -> dict:
    """Latency percentiles per endpoint and acknowledged submits for requests that ended in [t0, t1)."""
    by: dict[str, list[float]] = {}
    acked = 0
    for name, t, latency, status in requests:
        if t0 <= t < t1 and status:
            by.setdefault(name, []).append(latency)
            acked += name == "submit" and 200 <= status < 300
    out = {f"p99_{name}_ms": percentile(v, 99) for name, v in by.items()}
    out |= {f"p50_{name}_ms": percentile(v, 50) for name, v in by.items()}
    consents = len(by.get("consent", []))
    return out | {"responses": acked, "responses_per_s": acked / max(t1 - t0, 1e-9), "consents_per_s": consents / max(t1 - t0, 1e-9)}


def cpu_window(meter: procstat.CpuMeter, t0: float, t1: float, responses: int) -> dict:
    cpu = meter.window(t0, t1)
    seconds = max(cpu.pop("_seconds"), 1e-9)
    return {"cores": {k: v / seconds for k, v in cpu.items()},
            "ms_per_response": {k: 1000 * v / max(responses, 1) for k, v in cpu.items()}}


def spy(stack: ExitStack, pid: int, out: Path, rate: int, log: Path, gil: bool, subprocesses: bool) -> subprocess.Popen:
    """py-spy record of `pid` (and its subprocesses) until the stack closes. gil: only the thread
    holding the GIL (the web's threads; not for numpy work, whose loops release it). py-spy labels
    every subprocess's stacks with the parent's pid, so processes to tell apart get a py-spy each."""
    process = subprocess.Popen([str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(pid),
                                *(["--subprocesses"] if subprocesses else []),
                                "--rate", str(rate), "--format", "raw", "--function", *(["--gil"] if gil else []),
                                "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=open(log, "wb"))

    def stop():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()

    stack.callback(stop)
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500, help="launch: participants")
    parser.add_argument("--arrive", type=float, default=120, help="launch: they arrive over this many seconds")
    parser.add_argument("--spawn-rate", type=float, help="launch: participants arriving per second (instead of --arrive)")
    parser.add_argument("--duration", type=int, default=1800, help="launch: cap in seconds (the run ends when every session is done)")
    parser.add_argument("--trials", type=int, default=20, help="stimuli per participant (K)")
    parser.add_argument("--per-stimulus", type=int, default=50, help="participants per stimulus (N)")
    parser.add_argument("--think", default="8-20", help="seconds a participant paints one trial, min-max (uniform)")
    parser.add_argument("--sweep", metavar="C1,C2,...", help="saturation sweep instead of the launch: participants at a time, step by step")
    parser.add_argument("--ramp", type=float, default=15, help="sweep: seconds to add a step's participants")
    parser.add_argument("--hold", type=float, default=60, help="sweep: seconds each step is held and measured")
    parser.add_argument("--slo-ms", type=float, default=500, help="p99 submit (and next) latency target")
    parser.add_argument("--generator", choices=["async", "locust"], default="async")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cache", choices=["redis", "locmem"], default="redis",
                        help="rate-limit counts: the private Redis (as docker-compose.yml) or each process's memory")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the web and the Celery worker; stacks and top frames here")
    parser.add_argument("--profile-rate", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    if args.spawn_rate:
        args.arrive = args.users / args.spawn_rate
    if args.sweep and args.generator != "async":
        parser.error("--sweep needs --generator async (per-request times)")
    think = [float(x) for x in args.think.split("-")]
    load_before = os.getloadavg()

    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, work, True)
        redis_port, web_port = free_port(), free_port()
        redis_proc = started(stack, ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                                     "--appendonly", "no"], dict(os.environ), work / "redis.log")
        wait_port(redis_port, 10, redis_proc)
        broker = f"redis://127.0.0.1:{redis_port}/0"
        db_name = f"studyserver_load_{os.getpid()}"
        database = database_create(stack, db_name)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings.production", "SECRET_KEY": uuid.uuid4().hex * 2,
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "DATABASE_URL": database,
               "CELERY_BROKER_URL": broker, "MEDIA_ROOT": str(work / "media"), "STATIC_ROOT": str(work / "static"),
               "STUDYSERVER_VAR_DIR": str(work / "var"), "LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1",
               # Every simulated participant comes from 127.0.0.1; a real launch comes from as many
               # addresses as participants, so the per-address consent limit is lifted (still counted).
               "THROTTLE_PARTICIPANT_START": "1000000/min"}
        if args.cache == "redis":
            env["CACHE_URL"] = f"redis://127.0.0.1:{redis_port}/1"
        (work / "var").mkdir()
        os.environ.update(env)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        t = time.monotonic()
        if args.sweep:  # enough stimuli for every step's responses, held at most, with a margin
            levels = [int(x) for x in args.sweep.split(",")]
            expected = sum(c * (args.ramp + args.hold) / (sum(think) / 2) for c in levels)
            capacity = math.ceil(1.2 * expected / args.trials) + max(levels)
        else:
            capacity = args.users
        slug, n_stimuli = study_setup(users=capacity, trials=args.trials, per_stimulus=args.per_stimulus)
        print(f"study {slug}: {n_stimuli} stimuli, N={args.per_stimulus}, K={args.trials} ({time.monotonic() - t:.0f} s to set up)", flush=True)
        from django.db import connections

        connections.close_all()
        web = started(stack, [PYTHON, "-m", "gunicorn", "studyserver.wsgi", "--bind", f"127.0.0.1:{web_port}",
                              "--workers", str(args.web_workers), "--threads", str(args.threads), "--timeout", "60",
                              "--backlog", "2048", "--keep-alive", "30", "--preload", "-c", str(BENCH / "gc_probe.py")],
                      {**env, "GC_PROBE_DIR": str(work)}, work / "gunicorn.log")
        # As docker-compose.yml's CPU worker: the default queue, concurrency 2, with the beat (the sweep).
        worker = started(stack, [PYTHON, "-m", "celery", "-A", "studyserver", "worker", "-B", "-Q", "default",
                                 "-c", "2", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
                                 "-s", str(work / "var" / "beat-schedule"), "-n", f"load-{uuid.uuid4().hex[:6]}@%h"],
                         env, work / "worker.log")
        wait_port(web_port, 60, web)
        warm_up(web_port, slug, args.web_workers)
        out = work / "generator-out.json"
        generator: list[subprocess.Popen] = []
        meter = procstat.CpuMeter({
            "web": lambda: procstat.tree(web.pid), "worker": lambda: procstat.tree(worker.pid),
            "postgres": lambda: procstat.postgres_backends(db_name), "redis": lambda: [redis_proc.pid],
            "generator": lambda: procstat.tree(generator[0].pid) if generator else [],
        }, interval=1.0)
        profile_stack = ExitStack()
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            spy(profile_stack, web.pid, args.profile / "web.raw", args.profile_rate, work / "py-spy-web.log", gil=True, subprocesses=True)
            for pid in [worker.pid, *procstat.children(worker.pid)]:  # the consumer, the pool processes, the beat
                spy(profile_stack, pid, args.profile / f"worker-{pid}.raw", args.profile_rate, work / f"py-spy-worker-{pid}.log",
                    gil=False, subprocesses=False)
            time.sleep(3)
        gc_before = gc_total_ms(work)
        meter.start()
        began = time.monotonic()
        if args.generator == "async":
            argv = [PYTHON, str(BENCH / "loadgen.py"), "--port", str(web_port), "--slug", slug, "--out", str(out),
                    "--think", args.think, "--slo-ms", str(args.slo_ms)]
            argv += (["--steps", args.sweep, "--ramp", str(args.ramp), "--hold", str(args.hold)] if args.sweep
                     else ["--users", str(args.users), "--arrive", str(args.arrive), "--duration", str(args.duration)])
            generator.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=open(work / "generator.log", "wb"), stderr=subprocess.STDOUT))
        else:
            locust_env = {**env, "LOAD_SLUG": slug, "LOAD_OUT": str(out), "LOAD_THINK": args.think, "LOAD_USERS": str(args.users)}
            generator.append(subprocess.Popen(
                [PYTHON, "-m", "locust", "-f", str(BENCH / "load_users.py"), "--headless", "--host", f"http://127.0.0.1:{web_port}",
                 "-u", str(args.users), "-r", f"{args.users / args.arrive:.4f}", "-t", f"{args.duration}s", "--only-summary",
                 "--loglevel", "WARNING", "--stop-timeout", "30"],
                cwd=ROOT, env=locust_env, stdout=open(work / "generator.log", "wb"), stderr=subprocess.STDOUT))
        generator[0].wait()
        ended = time.monotonic()
        cpu_run = meter.totals()
        gc_run_ms = gc_total_ms(work) - gc_before
        rss = {pid: procstat.rss_mib(pid) for pid in gunicorn_workers(web.pid)}
        torch_in_web = any(procstat.maps_library(pid, "libtorch") for pid in rss)
        if not out.exists():
            raise RuntimeError(f"the generator wrote nothing; see {work / 'generator.log'}:\n{(work / 'generator.log').read_text()[-2000:]}")
        result = json.loads(out.read_text())
        drain_s = drained(slug, broker, timeout=900)
        cpu_total = meter.stop()
        profile_stack.close()
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}); see {work / 'worker.log'}")
        count = checks(slug, result["acks"], result.get("in_flight", []))
        elapsed = ended - began
        requests = result.get("requests", [])
        timeline = []
        if requests:
            for t0 in range(0, math.ceil(elapsed), 30):
                a, b = began + t0, min(began + t0 + 30, ended)
                w = window_stats(requests, a, b)
                timeline.append({"from_s": t0, "to_s": round(b - began)} | w | cpu_window(meter, a, b, w["responses"]))
        steps = []
        for step in result.get("steps", []):
            w = window_stats(requests, step["hold_start"], step["end"])
            steps.append({"participants": step["participants"], "hold_s": round(step["end"] - step["hold_start"], 1)} | w
                         | {"arrival_per_s": w["responses_per_s"] / args.trials}
                         | cpu_window(meter, step["hold_start"], step["end"], w["responses"]))
        rate = rates(result["acks"], None if args.sweep else began + args.arrive)
    folded = count["responses_folded"]
    acked = max(count["acknowledged"], 1)
    report = {"scenario": "sweep" if args.sweep else "launch", "generator": args.generator, "users": args.users,
              "arrive_s": args.arrive, "trials": args.trials, "per_stimulus": args.per_stimulus, "think_s": args.think,
              "web_workers": args.web_workers, "threads": args.threads, "cache": args.cache, "stimuli": n_stimuli,
              "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "run_s": round(elapsed, 1), "drain_s": round(drain_s, 1), "sessions": result["sessions"], **rate, "counts": count,
              "cores": os.cpu_count(), "errors": result.get("errors", {}), "gave_up": result.get("gave_up", {}),
              "cpu_s_run": {k: round(v, 2) for k, v in cpu_run.items()},
              "cpu_s_total": {k: round(v, 2) for k, v in cpu_total.items()},
              "cpu_ms_per_response_run": {k: round(1000 * v / acked, 2) for k, v in cpu_run.items()},
              "cores_used_run": {k: round(v / max(elapsed, 1e-9), 2) for k, v in cpu_run.items()},
              "web_gc_cpu_s_run": round(gc_run_ms / 1000, 2),
              "worker_cpu_s_by_pid": {str(pid): round(meter.last["worker"][pid] - meter.first["worker"][pid], 3)
                                      for pid in meter.last["worker"]},
              "worker_fold": {"cpu_s": round(cpu_total["worker"], 2), "folded": folded,
                              "ms_per_folded_response": round(1000 * cpu_total["worker"] / max(folded, 1), 2)},
              "web_worker_rss_mib": {str(k): round(v) for k, v in rss.items()}, "torch_in_web_worker": torch_in_web,
              "endpoints": {name: {"requests": len(v), "errors": result["failures"].get(name, 0),
                                   "p50_ms": percentile(v, 50), "p95_ms": percentile(v, 95), "p99_ms": percentile(v, 99)}
                            for name, v in sorted(result["latency_ms"].items())},
              "timeline": timeline, "steps": steps}
    report["targets"] = targets(report, args.slo_ms)
    if steps:
        over = [s for s in steps if s.get("p99_submit_ms", 0) > args.slo_ms]
        report["saturation"] = {"first_over": over[0] if over else None,
                                "last_under": ([s for s in steps if s.get("p99_submit_ms", 0) <= args.slo_ms] or [None])[-1]}
    print_report(report)
    if args.profile:
        profiles(args.profile, args.profile_rate, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    c = count
    ok = c["lost"] == 0 and c["duplicate_uuids_acked"] == 0 and c["duplicate_responses_per_trial"] == 0 \
        and c["stimuli_over_n"] == 0 and c["maps_not_equal_to_rebuild"] == 0 and c["stored_never_sent"] == 0
    print("count check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def targets(r: dict, slo_ms: float) -> dict:
    """Issue 12's targets for a launch (the sweep is measured, not judged)."""
    e, c = r["endpoints"], r["counts"]
    out = {"p99 submit < %d ms" % slo_ms: e.get("submit", {}).get("p99_ms", float("inf")) < slo_ms,
           "p99 next < %d ms" % slo_ms: e.get("next", {}).get("p99_ms", float("inf")) < slo_ms,
           "fold <= 3 ms CPU per response": r["worker_fold"]["ms_per_folded_response"] <= 3.0}
    if r["scenario"] == "launch":
        out["every participant finishes"] = r["sessions"]["done"] == r["users"]
        out["0 errors after retries"] = not any(r["gave_up"].values()) if r["gave_up"] else not r["errors"]
        out["counts hold"] = (c["lost"] == 0 and c["duplicate_uuids_acked"] == 0 and c["duplicate_responses_per_trial"] == 0
                              and c["stimuli_over_n"] == 0 and c["maps_not_equal_to_rebuild"] == 0 and c["stored_never_sent"] == 0)
    return out


WEB_VIEWS = {"consent": "ParticipantStartApi.post", "next": "TrialNextApi.get", "submit": "ResponseSubmitApi.post",
             "image": "TrialImageApi.get"}
WORKER_TASKS = {"human map fold": "human_map_update", "scores refresh": "scores_refresh",
                "reliability refresh": "reliability_refresh", "sweep": "pending_work_sweep"}


def profiles(folder: Path, rate: int, r: dict) -> None:
    """Top frames of the web (per participant view; the rest is middleware, DRF's dispatch and
    gunicorn around the views) and of the worker (per task; the rest is Celery itself)."""
    texts = []

    def scale_of(stacks, cpu_s: float) -> float:
        return cpu_s / max(sum(c for _, c in stacks) / rate, 1e-9)

    web = folder / "web.raw"
    if web.exists():
        stacks = profile_top.read_raw(web)
        scale = scale_of(stacks, r["cpu_s_total"]["web"])
        for name, marker in WEB_VIEWS.items():
            n = r["endpoints"].get(name, {}).get("requests", 0)
            texts.append(profile_top.report(profile_top.select(stacks, only=marker), rate=rate, requests=n, scale=scale,
                                            title=f"web, inside {marker} ({n} requests)"))
        rest = stacks
        for marker in WEB_VIEWS.values():
            rest = profile_top.select(rest, exclude=marker)
        texts.append(profile_top.report(rest, rate=rate, requests=r["counts"]["acknowledged"], unit="response", scale=scale,
                                        title="web, outside the views (middleware, DRF dispatch, gunicorn), per response"))
    files = sorted(folder.glob("worker-*.raw"))
    if files:
        # Per process: py-spy (without --gil, for numpy) also counts idle waits as samples, most of
        # all in the Celery consumer and the beat; so each pool process's task samples are scaled to
        # that process's measured CPU, and the consumer and the beat are given as measured CPU only.
        cpu = {int(pid): v for pid, v in r["worker_cpu_s_by_pid"].items()}
        by_pid = {int(path.stem.split("-")[1]): profile_top.read_raw(path) for path in files}
        pool = []
        for pid, stacks in by_pid.items():
            tasks = profile_top.select(stacks, only="trace_task")
            if tasks and pid in cpu:
                scale = cpu[pid] / max(sum(c for _, c in tasks) / rate, 1e-9)
                pool += [(st, c * scale) for st, c in tasks]
        other = sum(v for pid, v in cpu.items() if pid not in by_pid or not profile_top.select(by_pid[pid], only="trace_task"))
        folded = r["worker_fold"]["folded"]
        texts.append(f"worker processes other than the pool (Celery's consumer, the beat): {other:.1f} s CPU = "
                     f"{1000 * other / max(folded, 1):.2f} ms per folded response (measured; not profiled)\n")
        texts.append(profile_top.report(pool, rate=rate, requests=folded, unit="response",
                                        title=f"worker pool, every task, per folded response ({folded}), scaled per process to its measured CPU"))
        for name, marker in WORKER_TASKS.items():
            texts.append(profile_top.report(profile_top.select(pool, only=marker), rate=rate, requests=folded, unit="response",
                                            title=f"worker pool, {name} ({marker}), per folded response"))
    text = "\n".join(texts)
    (folder / "top.txt").write_text(text)
    print(text)


def fmt(value: float, spec: str = ".0f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and value == value else "-"


def print_report(r: dict) -> None:
    lb, la = r["load_average_before"], r["load_average_after"]
    what = ("sweep, closed loop (participants at a time, step by step)" if r["scenario"] == "sweep"
            else f"launch: {r['users']} participants arriving over {r['arrive_s']:.0f} s")
    print(f"\n{what}, K={r['trials']}, N={r['per_stimulus']}, think {r['think_s']} s; generator {r['generator']}; "
          f"gunicorn {r['web_workers']} workers x {r['threads']} threads, rate-limit cache {r['cache']}; "
          f"run {r['run_s']} s, worker drained {r['drain_s']} s after")
    print(f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} ({r['cores']} cores, shared)")
    print(f"{'endpoint':<10}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, e in r["endpoints"].items():
        print(f"{name:<10}{e['requests']:>10}{e['errors']:>8}{e['p50_ms']:>9.1f}{e['p95_ms']:>9.1f}{e['p99_ms']:>9.1f}")
    print(f"CPU during the run ({r['run_s']} s x {r['cores']} cores): "
          + ", ".join(f"{k} {v:.0f} s ({r['cores_used_run'][k]:.2f} cores, {r['cpu_ms_per_response_run'][k]:.1f} ms/response)"
                      for k, v in r["cpu_s_run"].items()))
    print(f"of the web's CPU, Python's garbage collector: {r['web_gc_cpu_s_run']:.1f} s (bench/gc_probe.py)")
    f = r["worker_fold"]
    print(f"worker (fold, scores, reliability, Celery) over the run and the drain: {f['cpu_s']:.1f} s CPU / {f['folded']} "
          f"responses folded = {f['ms_per_folded_response']:.1f} ms per response")
    print(f"responses/s sustained (median of per-second rates, all arrived): {r['sustained_per_s']:.0f}; mean over the run: {r['mean_per_s']:.0f}")
    rss = sorted(r["web_worker_rss_mib"].values())
    print(f"gunicorn workers' resident memory at the end: {', '.join(f'{v} MiB' for v in rss)} "
          f"(libtorch mapped: {'yes' if r['torch_in_web_worker'] else 'no'})")
    for kind, n in sorted(r["errors"].items(), key=lambda kv: -kv[1])[:6]:
        print(f"  error x{n}: {kind}")
    if r["gave_up"]:
        print("gave up after retries: " + ", ".join(f"{k} {v}" for k, v in r["gave_up"].items()))
    rows = r["steps"] or r["timeline"]
    if rows:
        key = "participants" if r["steps"] else "from_s"
        # arrive/s: in a step, the steady state's arrivals (responses/s / K); in the launch's timeline,
        # the consents answered per second in the window
        print(f"\n{'step' if r['steps'] else 'from s':>7}{'resp/s':>8}{'arrive/s':>9}{'p50 sub':>9}{'p99 sub':>9}{'p99 next':>9}"
              f"{'web':>7}{'worker':>7}{'pg':>6}{'gen':>6}{'redis':>6}   (cores)")
        for s in rows:
            cores = s["cores"]
            arrive = s["responses_per_s"] / r["trials"] if r["steps"] else s["consents_per_s"]
            print(f"{s[key]:>7}{s['responses_per_s']:>8.1f}{fmt(arrive, '.2f'):>9}"
                  f"{fmt(s.get('p50_submit_ms', float('nan'))):>9}{fmt(s.get('p99_submit_ms', float('nan'))):>9}"
                  f"{fmt(s.get('p99_next_ms', float('nan'))):>9}{cores['web']:>7.2f}{cores['worker']:>7.2f}"
                  f"{cores['postgres']:>6.2f}{cores['generator']:>6.2f}{cores['redis']:>6.2f}")
    if r.get("saturation"):
        first = r["saturation"]["first_over"]
        if first:
            print(f"saturation: p99 submit crosses {fmt(first['p99_submit_ms'])} ms at {first['participants']} participants at a time, "
                  f"{first['responses_per_s']:.1f} responses/s = {first['arrival_per_s']:.2f} participants arriving per s in the "
                  f"steady state; cores there: " + ", ".join(f"{k} {v:.2f}" for k, v in first["cores"].items()))
        else:
            print("saturation: not reached at the largest step")
    c = r["counts"]
    print(f"sessions started {r['sessions']['started']}, finished {r['sessions']['done']}")
    print(f"acknowledged {c['acknowledged']}  stored {c['stored']}  lost {c['lost']}  "
          f"stored-not-acked {c['stored_not_acknowledged']} (all in flight when the run stopped: "
          f"{c['stored_not_acknowledged'] == c['stored_in_flight_at_stop']})  "
          f"duplicate UUIDs {c['duplicate_uuids_acked']}  trials answered twice {c['duplicate_responses_per_trial']}  "
          f"stimuli over N {c['stimuli_over_n']}  maps {c['maps']} (folded {c['responses_folded']})  "
          f"maps != rebuild {c['maps_not_equal_to_rebuild']}")
    print("targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in r["targets"].items()))


if __name__ == "__main__":
    sys.exit(main())
