"""CPU per participant request, one at a time, as a multiple of the floor: a bare DRF endpoint.

    .venv/bin/python bench/participant_cpu.py [--participants 10] [--trials 10] [--warm-up 2] [--json PATH]
                                              [--profile DIR] [--profile-rate 250] [--profile-all]

bench/load.py measures the platform under hundreds of participants, where latency is mostly waiting
for a CPU; this bench measures the CPU itself. It sets up a fresh PostgreSQL database and a live paint
study (as bench/load.py does) and starts, side by side, two gunicorns with the same command line
(ONE worker process, ONE thread, --preload):

* the project (`studyserver.wsgi`, production settings; no Celery worker: the broker is in-memory,
  so map updates are queued and dropped; the rate-limit cache is the process's memory);
* the floor (`bench/floorsite`): Django with only SecurityMiddleware and CommonMiddleware, one DRF
  APIView, no authentication, no throttles, that parses the JSON body and stores it with one INSERT
  (a jsonb column) in the same PostgreSQL database. The project's own middleware, authentication,
  throttles and checks count against the project, not the floor.

After --warm-up participants (every code path once, not counted), it takes --participants
participants through their sessions one request at a time with the paint
payloads of bench/paint_payloads.py and, after every submit, posts the same body to the floor, so
both are measured in the same run under the same machine load. For each endpoint it prints the
requests, the wall time, the CPU the serving gunicorn worker spent (user + system, every thread,
nanosecond schedstat from /proc, read around each request) and the CPU of the PostgreSQL backends
of the bench's database, each as a multiple of the floor's; a whole response (its submit and picture
plus its share of consent and the first next-trial call; the submit's answer carries the next
trial) likewise. Also the CPU of Python's garbage collector inside the requests and the full
collections (both servers run bench/gc_probe.py's hooks: `-c bench/gc_probe.py` on the same command
line), each worker's resident memory after warm-up and at the end, and whether libtorch is mapped
in the project's web worker.

--profile DIR: serve each endpoint from its own one-worker gunicorn (same command line), record each
worker with py-spy (`--gil --function`: only samples where the worker's thread holds the GIL, i.e. runs
Python; without --gil py-spy also counts a thread that is runnable but waiting for a CPU, which on a
busy machine tripled the samples in psycopg's waits; numpy loops that release the GIL are missed),
keep the samples inside Django's handler (WSGIHandler.__call__; gunicorn's own request parsing is
outside), scale their shares to the CPU per request measured in the same run, and write
DIR/<endpoint>.raw (collapsed stacks) and DIR/<endpoint>-top.txt (top frames, self and cumulative,
in ms of CPU per request; bench/profile_top.py). The CPU figures of a profiled run include py-spy's
interference: take the ratios from a run without --profile.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))  # after the project: bench/analysis.py must not hide the analysis app

import procstat  # noqa: E402
import profile_top  # noqa: E402
from load import database_create, free_port, started, study_setup, wait_port  # noqa: E402
from paint_payloads import paint_payload  # noqa: E402

PYTHON = sys.executable
ENDPOINTS = ("consent", "next", "image", "submit")
# Targets (issue 12): each a ratio to the floor's web CPU per request, in one run of this bench.
TARGETS = {"consent": 4.0, "next": 4.0, "submit": 4.0, "whole response": 5.0}


def gunicorn_argv(app: str, port: int) -> list[str]:
    """The one command line both the project and the floor are served with."""
    return [PYTHON, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "1",
            "--timeout", "60", "--preload", "-c", str(BENCH / "gc_probe.py")]


def call(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as res:
        return res.status, res.read()


def worker_of(master: int) -> int:
    for _ in range(100):
        kids = procstat.children(master)
        if kids:
            return kids[0]
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn {master} started no worker")


class Server:
    """One one-worker gunicorn: its base URL and its worker's pid."""

    def __init__(self, stack: ExitStack, app: str, env: dict, log: Path):
        self.port = free_port()
        self.process = started(stack, gunicorn_argv(app, self.port), env, log)
        wait_port(self.port, 90, self.process)
        self.base = f"http://127.0.0.1:{self.port}"
        self.worker = worker_of(self.process.pid)


def warm(server: Server, path: str, method: str = "GET", body: bytes | None = None, times: int = 5) -> None:
    """Imports, URL resolver, the persistent database connection."""
    for _ in range(times):
        try:
            call(method, server.base + path, body)
        except urllib.error.HTTPError:
            pass


def pg_cpu(database: str) -> dict[int, float]:
    out = {}
    for pid in procstat.postgres_backends(database):
        try:
            out[pid] = procstat.thread_cpu_s(pid)
        except ProcessLookupError:
            pass
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--trials", type=int, default=10, help="stimuli per participant (K)")
    parser.add_argument("--warm-up", type=int, default=2, help="participants taken through first, not counted")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy each endpoint's worker; write stacks and top frames here")
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--profile-all", action="store_true",
                        help="py-spy without --gil: count every runnable thread (over-counts waits on a busy machine)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="participant-cpu-"))
    db_name = f"studyserver_cpu_{os.getpid()}"
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, work, True)
        database = database_create(stack, db_name)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings.production", "SECRET_KEY": uuid.uuid4().hex * 2,
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "DATABASE_URL": database,
               "CELERY_BROKER_URL": "memory://", "MEDIA_ROOT": str(work / "media"), "STATIC_ROOT": str(work / "static"),
               "STUDYSERVER_VAR_DIR": str(work / "var"), "LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1",
               # one client: the per-token rate limit would answer 429 to a fast sequential session
               "THROTTLE_PARTICIPANT": "100000/min", "THROTTLE_PARTICIPANT_START": "100000/min"}
        env["GC_PROBE_DIR"] = str(work / "gc")
        (work / "gc").mkdir()
        floor_env = {**env, "DJANGO_SETTINGS_MODULE": "floorsite.settings", "PYTHONPATH": str(BENCH)}
        (work / "var").mkdir()
        os.environ.update(env)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([PYTHON, "-m", "django", "migrate", "--run-syncdb", "--noinput", "-v", "0"], cwd=ROOT, env=floor_env, check=True)
        import django

        django.setup()
        everyone = args.participants + args.warm_up
        slug, n_stimuli = study_setup(users=everyone, trials=args.trials, per_stimulus=everyone)
        from django.db import connections

        connections.close_all()
        floor = Server(stack, "floorsite.wsgi", floor_env, work / "floor.log")
        if args.profile:  # one worker per endpoint, so that each profile holds one endpoint only
            servers = {name: Server(stack, "studyserver.wsgi", env, work / f"gunicorn-{name}.log") for name in ENDPOINTS}
        else:
            one = Server(stack, "studyserver.wsgi", env, work / "gunicorn.log")
            servers = dict.fromkeys(ENDPOINTS, one)
        sample = paint_payload({"display": {"width": 500, "height": 375}, "width": 500, "height": 375})
        warm(floor, "/store/", "POST", json.dumps({"client_uuid": str(uuid.uuid4()), "payload": sample}).encode())
        for server in set(servers.values()):
            warm(server, "/api/v1/participant/warm-up/next/")
        project_workers = sorted({s.worker for s in servers.values()})
        stats: dict[str, list[tuple[float, float, float]]] = {}

        def timed(name: str, server: Server, method: str, path: str, body: bytes | None = None) -> bytes:
            pg0, cpu0, t0 = pg_cpu(db_name), procstat.thread_cpu_s(server.worker), time.perf_counter()
            status, data = call(method, server.base + path, body)
            wall, cpu, pg1 = time.perf_counter() - t0, procstat.thread_cpu_s(server.worker) - cpu0, pg_cpu(db_name)
            stats.setdefault(name, []).append((wall, cpu, sum(v - pg0.get(p, 0.0) for p, v in pg1.items())))
            assert 200 <= status < 300, (name, status, data[:300])
            return data

        def session() -> int:
            body = json.dumps({"consent": True, "external_id": f"cpu-{uuid.uuid4().hex}"}).encode()
            token = json.loads(timed("consent", servers["consent"], "POST", f"/api/v1/studies/{slug}/participants/", body))["token"]
            data = json.loads(timed("next", servers["next"], "GET", f"/api/v1/participant/{token}/next/"))
            answered = 0
            while not data["done"]:
                trial = data["trial"]
                timed("image", servers["image"], "GET", trial["image_url"])
                body = json.dumps({"client_uuid": str(uuid.uuid4()), "payload": paint_payload(trial), "duration_ms": 5000}).encode()
                answer = json.loads(timed("submit", servers["submit"], "POST", f"/api/v1/participant/{token}/trials/{trial['id']}/response/", body))
                answered += 1
                timed("floor", floor, "POST", "/store/", body)
                data = answer["next"] or json.loads(timed("next", servers["next"], "GET", f"/api/v1/participant/{token}/next/"))
            return answered

        for _ in range(args.warm_up):  # every code path once, not counted
            session()
        stats.clear()
        time.sleep(0.5)  # the probe writes after the answer
        gc_skip = {pid: gc_lines(work / "gc", pid) for pid in {*project_workers, floor.worker}}
        rss_start = {"project": procstat.rss_mib(servers["submit"].worker), "floor": procstat.rss_mib(floor.worker)}
        torch_in_web = procstat.maps_library(servers["submit"].worker, "libtorch")
        spies = {}
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, server in [*servers.items(), ("floor", floor)]:
                spies[name] = subprocess.Popen(
                    [str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(server.worker), "--rate", str(args.profile_rate),
                     "--format", "raw", "--function", *([] if args.profile_all else ["--gil"]),
                     "--output", str(args.profile / f"{name}.raw")],
                    stdout=subprocess.DEVNULL, stderr=open(work / f"py-spy-{name}.log", "wb"))
            time.sleep(2)  # py-spy attaches
        responses = sum(session() for _ in range(args.participants))
        time.sleep(0.5)
        gc_ms = gc_by_endpoint(work / "gc", gc_skip)
        rss_end = {"project": procstat.rss_mib(servers["submit"].worker), "floor": procstat.rss_mib(floor.worker)}
        for spy in spies.values():
            spy.send_signal(signal.SIGINT)
        for spy in spies.values():
            spy.wait(60)
    load_after = os.getloadavg()
    report = summary(stats, responses, args, n_stimuli, load_before, load_after, rss_start, rss_end, torch_in_web, project_workers, gc_ms)
    print_report(report)
    if args.profile:
        for name in [*ENDPOINTS, "floor"]:
            raw = args.profile / f"{name}.raw"
            if not raw.exists():
                print(f"py-spy wrote nothing for {name} (see its log)")
                continue
            requests = len(stats.get(name, [])) or 1
            measured = report["endpoints"][name]["web_cpu_ms"]
            stacks = profile_top.select(profile_top.read_raw(raw), only="WSGIHandler.__call__")  # in a request
            sampled_ms = 1000 * sum(c for _, c in stacks) / args.profile_rate / requests
            text = profile_top.report(stacks, rate=args.profile_rate, requests=requests, scale=measured / max(sampled_ms, 1e-9),
                                      title=f"{name}: {requests} requests, py-spy {args.profile_rate} Hz, samples inside Django's handler, "
                                            f"scaled to the {measured:.1f} ms CPU per request measured in this (profiled) run")
            (args.profile / f"{name}-top.txt").write_text(text)
            print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def gc_lines(folder: Path, pid: int) -> list[list[str]]:
    path = folder / f"gc-{pid}.tsv"
    return [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []


def endpoint_of(path: str) -> str | None:
    for marker, name in (("/participants/", "consent"), ("/next/", "next"), ("/image/", "image"), ("/response/", "submit"),
                         ("/store/", "floor")):
        if path.endswith(marker):
            return name
    return None


def gc_by_endpoint(folder: Path, skip: dict[int, list]) -> dict[str, dict]:
    """The garbage collector's CPU during the measured requests (bench/gc_probe.py), per endpoint."""
    out: dict[str, dict] = {}
    for pid, before in skip.items():
        for path, ms, _g0, _g1, g2, *_ in gc_lines(folder, pid)[len(before):]:
            name = endpoint_of(path)
            if name:
                row = out.setdefault(name, {"requests": 0, "gc_ms": 0.0, "gen2": 0})
                row["requests"] += 1
                row["gc_ms"] += float(ms)
                row["gen2"] += int(g2)
    return out


def summary(stats, responses, args, n_stimuli, load_before, load_after, rss_start, rss_end, torch_in_web, project_workers, gc_ms) -> dict:
    def row(rows):
        wall, cpu, pg = ([r[i] for r in rows] for i in range(3))
        return {"requests": len(rows), "wall_ms": 1000 * statistics.fmean(wall), "web_cpu_ms": 1000 * statistics.fmean(cpu),
                "web_cpu_median_ms": 1000 * statistics.median(cpu), "pg_cpu_ms": 1000 * statistics.fmean(pg)}

    rows = {name: row(stats[name]) for name in ["floor", *ENDPOINTS] if name in stats}
    floor = rows["floor"]
    whole = {"requests": responses, "wall_ms": sum(1000 * sum(r[0] for r in stats[n]) for n in ENDPOINTS if n in stats) / max(responses, 1),
             "web_cpu_ms": sum(1000 * sum(r[1] for r in stats[n]) for n in ENDPOINTS if n in stats) / max(responses, 1),
             "pg_cpu_ms": sum(1000 * sum(r[2] for r in stats[n]) for n in ENDPOINTS if n in stats) / max(responses, 1)}
    rows["whole response"] = whole
    for name, r in rows.items():
        g = gc_ms.get(name)
        if g:
            r["gc_ms"], r["gen2_collections"] = g["gc_ms"] / max(g["requests"], 1), g["gen2"]
    whole["gc_ms"] = sum(g["gc_ms"] for n, g in gc_ms.items() if n != "floor") / max(responses, 1)
    whole["gen2_collections"] = sum(g["gen2"] for n, g in gc_ms.items() if n != "floor")
    for r in rows.values():
        r["x_floor"] = r["web_cpu_ms"] / floor["web_cpu_ms"]
        r["pg_x_floor"] = r["pg_cpu_ms"] / floor["pg_cpu_ms"] if floor["pg_cpu_ms"] > 0 else float("nan")
    targets = {name: {"at_most_x": t, "x": rows[name]["x_floor"], "met": rows[name]["x_floor"] <= t} for name, t in TARGETS.items()}
    return {"participants": args.participants, "trials": args.trials, "stimuli": n_stimuli, "responses": responses,
            "profiled": bool(args.profile), "project_web_workers": len(project_workers),
            "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
            "cores": os.cpu_count(), "endpoints": rows, "targets": targets,
            "rss_mib": {"after_warm_up": rss_start, "at_end": rss_end}, "torch_in_web_worker": torch_in_web}


def print_report(r: dict) -> None:
    lb, la = r["load_average_before"], r["load_average_after"]
    print(f"\n{r['participants']} participants x {r['trials']} trials ({r['stimuli']} stimuli), one request at a time; "
          f"gunicorn 1 worker x 1 thread for the project (production settings) and for the floor"
          + (f"; PROFILED: {r['project_web_workers']} project workers, one per endpoint, under py-spy" if r["profiled"] else ""))
    print(f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
          f"({r['cores']} cores, shared)")
    print(f"{'endpoint':<16}{'requests':>9}{'wall ms':>9}{'web CPU ms':>12}{'x floor':>9}{'of it GC ms':>12}{'full GCs':>9}"
          f"{'postgres CPU ms':>17}{'x floor':>9}  target")
    labels = {"floor": "floor (1 INSERT)", "submit": "submit (+next)"}
    for name, e in r["endpoints"].items():
        target = r["targets"].get(name)
        mark = f"<= {target['at_most_x']:.0f}x {'met' if target['met'] else 'NOT met'}" if target else ""
        print(f"{labels.get(name, name):<16}{e['requests']:>9}{e['wall_ms']:>9.1f}{e['web_cpu_ms']:>12.2f}{e['x_floor']:>9.1f}"
              f"{e.get('gc_ms', float('nan')):>12.2f}{e.get('gen2_collections', 0):>9}{e['pg_cpu_ms']:>17.2f}{e['pg_x_floor']:>9.1f}  {mark}")
    print("whole response = its submit (+next) and picture, plus its share of consent and the first next-trial call; "
          "GC = CPU of Python's garbage collector inside the request (bench/gc_probe.py), full GCs = generation-2 collections")
    w = r["endpoints"]["whole response"]
    print(f"=> at most {r['cores'] * 1000 / w['web_cpu_ms']:.0f} responses/s on {r['cores']} cores if the web tier had them all "
          f"(the floor: {r['cores'] * 1000 / r['endpoints']['floor']['web_cpu_ms']:.0f} requests/s)")
    rs, re_ = r["rss_mib"]["after_warm_up"], r["rss_mib"]["at_end"]
    print(f"gunicorn worker resident memory: project {rs['project']:.0f} MiB after warm-up, {re_['project']:.0f} MiB at the end "
          f"(libtorch mapped: {'yes' if r['torch_in_web_worker'] else 'no'}); floor {rs['floor']:.0f} -> {re_['floor']:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
