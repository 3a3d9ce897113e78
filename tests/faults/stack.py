"""Real processes for the fault tests: a gunicorn server, a Celery worker, a private redis-server, a
TCP proxy that can cut a connection, and an HTTP client that retries as the participant page does."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.conftest import ARTIFACTS, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 30, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.args[:3]} exited ({process.returncode}); log: {getattr(process, 'log_path', '?')}")
        if port_open(port):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


def spawn(argv: list[str], env: dict, name: str) -> subprocess.Popen:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"{name}-{uuid.uuid4().hex[:6]}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = log_path
    process.log_file = log
    return process


def stop(process: subprocess.Popen, *, kill: bool = False) -> None:
    if process.poll() is None:
        (process.kill if kill else process.terminate)()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log_file.close()


def redis_start(port: int, name: str = "redis") -> subprocess.Popen:
    process = spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                    dict(os.environ), name)
    wait_port(port, 10, process)
    return process


def app_env(*, database_url: str, broker: str, media_root: str, **extra: str) -> dict:
    """Production settings on loopback (persistent database connections, as deployed)."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings.production", "SECRET_KEY": "fault-tests-" + "x" * 40,
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker, "MEDIA_ROOT": media_root, "STUDYSERVER_VAR_DIR": str(Path(media_root) / "var"),
            "OPENBLAS_NUM_THREADS": "1", **extra}


def database_url(port: int | None = None) -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{port or db['PORT'] or 5432}/{db['NAME']}"


def gunicorn_start(env: dict, port: int, workers: int = 2) -> subprocess.Popen:
    process = spawn([sys.executable, "-m", "gunicorn", "studyserver.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                     "--threads", "4", "--timeout", "60", "--preload"], env, "gunicorn")
    wait_port(port, 60, process)
    return process


def worker_start(env: dict, name: str, queues: str = "default,explain", beat: bool = False) -> subprocess.Popen:
    argv = [sys.executable, "-m", "celery", "-A", "studyserver", "worker", "-Q", queues, "-P", "solo", "-c", "1",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"]
    if beat:
        argv += ["-B", "-s", str(Path(env["STUDYSERVER_VAR_DIR"]) / "beat-schedule")]
    Path(env["STUDYSERVER_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    return spawn(argv, env, name)


# --- HTTP as the participant page does it ------------------------------------------------------


def http(method: str, url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict, dict]:
    """(status, JSON body, headers); status 0 for a connection error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            return res.status, json.loads(res.read() or b"{}"), dict(res.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"raw": raw[:300].decode(errors="replace")}
        return exc.code, parsed, dict(exc.headers)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, {}, {}


class Participants:
    """Threads that take participants through their trials, retrying 5xx / connection errors with the
    same client UUID (the page's rule). Records every status seen and every acknowledged UUID."""

    def __init__(self, base: str, tokens: list[str], payload, threads: int = 6, pause_s: float = 0.0):
        self.base, self.payload, self.pause_s = base, payload, pause_s
        self.queue = list(tokens)
        self.lock = threading.Lock()
        self.statuses: list[tuple[str, int, dict, dict]] = []  # (endpoint, status, body, headers)
        self.acked: dict[str, int] = {}  # client uuid -> trial id
        self.unexpected: list = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Participants:
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "participants did not finish in time"

    def _call(self, endpoint: str, method: str, url: str, body=None) -> tuple[int, dict]:
        for attempt in range(60):
            status, data, headers = http(method, url, body)
            with self.lock:
                self.statuses.append((endpoint, status, data, headers))
            if status and status < 500:
                return status, data
            time.sleep(min(0.1 * 2**attempt, 1.0))
        raise AssertionError(f"{endpoint} kept failing")

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                token = self.queue.pop()
            while True:
                status, data = self._call("next", "GET", f"{self.base}/api/v1/participant/{token}/next/")
                if status != 200 or data.get("done"):
                    break
                trial = data["trial"]
                client_uuid = str(uuid.uuid4())
                url = f"{self.base}/api/v1/participant/{token}/trials/{trial['id']}/response/"
                status, body = self._call("submit", "POST", url, {"client_uuid": client_uuid, "payload": self.payload(trial)})
                if status in (200, 201):
                    with self.lock:
                        self.acked[client_uuid] = trial["id"]
                else:
                    with self.lock:
                        self.unexpected.append((status, body))
                if self.pause_s:
                    time.sleep(self.pause_s)


# --- a TCP proxy that can be cut -----------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:<port> -> 127.0.0.1:<target>, in its own thread and asyncio loop. `cut()` drops every
    open connection and refuses new ones (closed at once) until `restore()`."""

    def __init__(self, target_port: int):
        self.target_port, self.port = target_port, free_port()
        self.down = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TcpProxy:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer) -> None:
        if self.down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(source, sink):
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()
                self.writers.discard(sink)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.down = True

        def close_all():
            for w in list(self.writers):
                w.transport.abort()
            self.writers.clear()

        self.loop.call_soon_threadsafe(close_all)

    def restore(self) -> None:
        self.down = False
