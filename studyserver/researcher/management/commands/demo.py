"""`manage.py demo`: set up the embedded demo and serve it (web server + workers) until Ctrl-C."""
from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management import BaseCommand, call_command

from explain.models import ExplanationJob
from studyserver.supervise import Child, Supervisor

from ...demo import DEMO_USERNAME, demo_researcher, demo_study


def celery_worker(name: str, queues: str, *, beat: bool = False) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "studyserver", "worker", "-Q", queues, "-P", "solo",
            "-c", "1", "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            *(["-B"] if beat else [])]


def _get_status(url: str, *, deadline: float) -> int:
    """HTTP status of GET url, retrying while the server is still starting."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return answer.status
        except OSError:  # refused, reset, or accepted but not answered in time (workers still importing)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Command(BaseCommand):
    help = "Create the demo study from scikit-image photos, launch it, and serve it with its workers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--password", help="password for the demo researcher (default: a new random one)")
        parser.add_argument("--check", action="store_true", help="wait for the Grad-CAM maps, check the pages answer, then stop")
        parser.add_argument("--timeout", type=float, default=600, help="seconds --check waits for the maps")

    def handle(self, *args, host, port, password, check, timeout, **options):
        self.stdout.write("Setting up the database ...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        user, password = demo_researcher(password)
        study = demo_study(user)
        base = f"http://{host}:{port}"
        supervisor = Supervisor(
            [
                Child("web", [sys.executable, "-m", "gunicorn", "studyserver.wsgi", "-b", f"{host}:{port}",
                              "--workers", "2", "--threads", "4", "--timeout", "60"]),
                Child("worker-explain", celery_worker("explain", "explain")),
                Child("worker", celery_worker("default", "default", beat=True)),
            ]
        )
        code = 0
        with supervisor.interruptible():
            try:
                supervisor.start()
                self._wait_until_serving(supervisor, f"{base}/healthz")
                self.stdout.write(self.style.SUCCESS("\nThe demo is running.\n"))
                self.stdout.write(f"  Participant link:     {base}/s/{study.slug}/")
                self.stdout.write(f"  Researcher dashboard: {base}/dashboard/studies/{study.slug}/")
                self.stdout.write(f"  Log in as:            {DEMO_USERNAME} / {password}")
                self.stdout.write(f"  Database: {settings.DATABASES['default']['NAME']} · broker: {settings.CELERY_BROKER_URL}")
                self.stdout.write(f"  DEBUG: {'on' if settings.DEBUG else 'off (DEBUG=1 make demo turns on Django debug pages)'}")
                self.stdout.write("  Press Ctrl-C to stop the web server and the workers.\n")
                self.stdout.flush()
                if check:
                    self._check(study, base, timeout)
                else:
                    code = supervisor.wait()
            except KeyboardInterrupt:
                code = 0
        if code:
            sys.exit(code)

    def _wait_until_serving(self, supervisor: Supervisor, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = supervisor.dead()
            if dead:
                raise SystemExit(f"{dead[0].name} exited with code {dead[0].process.returncode} (is the port in use?)")
            try:
                if _get_status(url, deadline=0) == 200:
                    return
            except OSError:  # URLError, ConnectionError and a read timeout all mean "not serving yet"
                if time.monotonic() > deadline:
                    raise SystemExit(f"the web server did not answer {url} within {timeout} s") from None
                time.sleep(0.3)

    def _check(self, study, base: str, timeout: float) -> None:
        jobs = ExplanationJob.objects.filter(image_sha256__in=study.stimuli.values("sha256"))
        deadline = time.monotonic() + timeout
        while jobs.exclude(status__in=["done", "failed"]).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"demo check: jobs not finished after {timeout} s")
            time.sleep(1)
        failed = list(jobs.filter(status="failed").values_list("error", flat=True))
        if failed:
            raise SystemExit(f"demo check: {len(failed)} job(s) failed: {failed[0]}")
        # the static file: served by WhiteNoise with DEBUG off too
        for path in (f"/s/{study.slug}/", "/healthz", "/accounts/login/", "/static/studyserver/site.css"):
            status = _get_status(base + path, deadline=time.monotonic() + 30)
            if status != 200:
                raise SystemExit(f"demo check: {path} answered {status}")
        self.stdout.write(self.style.SUCCESS(f"demo check passed: {jobs.count()} Grad-CAM maps, pages answer"))
