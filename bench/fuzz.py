"""Fuzz the API from its own OpenAPI schema (schemathesis) against a live gunicorn on loopback.

    .venv/bin/python bench/fuzz.py [--requests 1600] [--seed 0] [--json out.json]

Sets up a fresh PostgreSQL database (dropped at the end), a researcher with an API token, a draft
study with two photos (for the researcher endpoints) and a live study with a participant (for the
participant endpoints); starts gunicorn (embedded settings, high rate limits so the fuzzer is not
throttled); then, per operation of /api/schema/, draws valid (positive) and invalid (negative) requests
from the schema. Path parameters are the real slug, stimulus, participant token and trial 3 times in
4 (else what the fuzzer made), so requests reach the handlers rather than 404 at the lookup.

Checks every answer: no 5xx, and every 4xx is JSON with a non-empty `detail` (or `error`). Prints a
table of requests by status class per operation and the failures; exit 1 on any failure.
`POST /auth/token/revoke/` is left out: it would end the fuzzer's own credentials.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"
SKIP = {("POST", "/api/v1/auth/token/revoke/")}

SETUP = r"""
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from studyserver.researcher.demo import demo_photo_bytes
from annotations.services import participation
from studyserver.researcher.services import studies
user = get_user_model().objects.create_user(username="fuzz-researcher", password="fuzz-pw-123")
draft = studies.study_create(owner=user, slug="fuzz-draft", title="Fuzz draft", participants_per_stimulus=5)
live = studies.study_create(owner=user, slug="fuzz-live", title="Fuzz live", participants_per_stimulus=50,
                            stimuli_per_participant=2)
stimuli = [studies.stimulus_create(study=s, data=demo_photo_bytes(f), filename=f, class_index=c)
           for s in (draft, live) for f, c in (("chelsea.png", 285), ("coffee.png", 967))]
live = studies.study_launch(study=live)
participant, _ = participation.participant_start(study=live)
trial = participation.trial_next_assign(participant=participant)
print(json.dumps({"token": Token.objects.create(user=user).key, "slug": draft.slug, "stimulus_id": stimuli[0].pk,
                  "live_slug": live.slug, "spare_stimulus_id": stimuli[1].pk,
                  "participant": participant.token, "trial_id": trial.pk, "username": "fuzz-researcher"}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(db: str, var_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "CACHE_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "studyserver.settings.local", "DEBUG": "0", "DATABASE_URL": f"{PG}/{db}",
        "STUDYSERVER_VAR_DIR": var_dir, "MEDIA_ROOT": f"{var_dir}/media", "CELERY_BROKER_URL": "filesystem://",
        "THROTTLE_PARTICIPANT": "100000/min", "THROTTLE_PARTICIPANT_START": "100000/min",
        "THROTTLE_LOGIN": "100000/min", "THROTTLE_RESEARCHER": "100000/min", "LOG_LEVEL": "ERROR",
    })
    return env


def prepare(env: dict) -> dict:
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([*manage, "shell", "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_server(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "gunicorn", "studyserver.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--threads", "2", "--timeout", "60"]
    log = open(log_path, "wb")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).ok:
                return process
        except requests.RequestException:  # not listening yet, or still importing
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"gunicorn did not start; see {log_path}")


def problem_of(response: requests.Response) -> str | None:
    """What is wrong with this answer, or None."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:200]!r}"
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            return f"{response.status_code} is not JSON: {response.text[:120]!r}"
        if not isinstance(body, dict) or not (body.get("detail") or body.get("error")):
            return f"{response.status_code} has no message: {str(body)[:120]}"
    return None


def fuzz(base: str, real: dict, budget: int, seed: int) -> tuple[dict, list]:
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base}/api/schema/")
    operations = [op.ok() for op in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIP]
    per_mode = max(1, -(-budget // (2 * len(operations))))  # operations without parameters draw fewer
    choose = random.Random(seed)
    session = requests.Session()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures: list = []
    researcher = {"Authorization": f"Token {real['token']}"}
    values = {"slug": real["slug"], "stimulus_id": real["stimulus_id"], "token": real["participant"],
              "trial_id": real["trial_id"], "username": real["username"]}

    def values_for(op) -> dict:
        """The real path values for this operation: consent goes to the live study; a DELETE of a
        stimulus takes the spare one, so the others keep theirs."""
        if op.path.endswith("/participants/"):
            return {**values, "slug": real["live_slug"]}
        if op.method.upper() == "DELETE" and "{stimulus_id}" in op.path:
            return {**values, "stimulus_id": real["spare_stimulus_id"]}
        return values

    def runner(op, mode, label):
        @hypothesis.settings(max_examples=per_mode, database=None, deadline=None, derandomize=True,
                             phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case):
            real_values = values_for(op)
            for name in list(case.path_parameters or {}):
                if name in real_values and choose.random() < 0.75:
                    case.path_parameters[name] = real_values[name]
            if op.method.upper() == "PATCH" and isinstance(case.body, dict):
                case.body.pop("slug", None)  # renaming the study would 404 every later operation
            try:
                response = case.call(base_url=base, session=session, headers=researcher, timeout=60,
                                     allow_redirects=False)
            except requests.RequestException as exc:
                counts[label]["error"] += 1
                failures.append((label, mode.value, f"no answer: {exc}", case.as_curl_command()))
                return
            counts[label][f"{response.status_code // 100}xx"] += 1
            problem = problem_of(response)
            if problem:
                failures.append((label, mode.value, problem, case.as_curl_command()))

        return run

    for op in operations:
        label = f"{op.method.upper()} {op.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                runner(op, mode, label)()
            except hypothesis.errors.Unsatisfiable:
                counts[label]["unsatisfiable"] += 1
    return counts, failures


def table(counts: dict, failures: list) -> str:
    classes = ["2xx", "3xx", "4xx", "5xx", "error"]
    width = max(len(label) for label in counts) + 2
    lines = [f"{'operation':<{width}}{'requests':>9}" + "".join(f"{c:>7}" for c in classes)]
    total = defaultdict(int)
    for label in sorted(counts):
        row = counts[label]
        n = sum(row[c] for c in classes)
        total["requests"] += n
        for c in classes:
            total[c] += row[c]
        lines.append(f"{label:<{width}}{n:>9}" + "".join(f"{row[c]:>7}" for c in classes))
    lines.append(f"{'total':<{width}}{total['requests']:>9}" + "".join(f"{total[c]:>7}" for c in classes))
    lines.append(f"failures: {len(failures)}")
    for label, mode, problem, curl in failures[:30]:
        lines.append(f"  {label} [{mode}] {problem}\n    {curl}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1600, help="about this many requests in all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write counts and failures here")
    args = parser.parse_args()
    db = f"studyserver_fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="fuzz-") as var_dir:
            env = server_env(db, var_dir)
            real = prepare(env)
            port = free_port()
            server = start_server(env, port, Path(var_dir) / "gunicorn.log")
            started = time.monotonic()
            counts, failures = fuzz(f"http://127.0.0.1:{port}", real, args.requests, args.seed)
            elapsed = time.monotonic() - started
            print(table(counts, failures))
            n = sum(sum(v for k, v in row.items() if k != "unsatisfiable") for row in counts.values())
            print(f"{n} requests in {elapsed:.0f} s ({n / max(elapsed, 1e-9):.0f}/s)")
            if args.json:
                Path(args.json).write_text(json.dumps({"requests": n, "seconds": elapsed, "counts": counts,
                                                       "failures": failures}, indent=1))
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
            server = None
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
