"""A light load generator for bench/load.py: participants as asyncio tasks over raw HTTP/1.1.

    .venv/bin/python bench/loadgen.py --port P --slug S --out FILE [--users 500 --arrive 120]
                                      [--think 8-20] [--steps 100,200,400 --ramp 15 --hold 60 --slo-ms 500]

Why not locust: locust (gevent, FastHttpUser, a fresh paint payload built in Python per submit) spent
7.5 ms of CPU per response in bench/load.py, on the same two cores as the server it measures; this
spends a fraction of that (one process, one event loop, keep-alive connections, pre-encoded paint
bodies from bench/paint_payloads.py), so the machine's CPU goes to the stack under test.

Each participant is one task with its own keep-alive connection (as a browser holds one): consent
(POST participants) -> GET next -> repeat [GET the trial's image -> think -> POST a raw paint payload;
the answer carries the next trial, else GET next] until it says done. As the participant page does,
a submit failing with 5xx, 429 or a connection error is retried with the same client UUID (backoff
0.25 s doubling to 8 s, 20 attempts); consent and GET next are retried likewise (6 attempts).

Two schedules:
* launch (default): --users participants arrive at uniformly random times over --arrive seconds
  (as a recruiter's launch brings them), each takes one whole session; the run ends when all are done
  (or after --duration s).
* steps (--steps C1,C2,...): a closed loop at a fixed number of participants at a time: at each step
  participants are added over --ramp s up to Ci, then held for --hold s; a participant who finishes is
  replaced by a new one at once (so in the steady state arrivals = completions, about responses/s / K).
  After each step the p99 submit latency of its hold window is computed; the run stops after the
  first step over --slo-ms (the saturation point), or after the last step.

Written to --out (JSON): per endpoint the latencies (ms) of answered requests, every request as
[endpoint, end time (monotonic, s), latency ms, status] (status 0: connection error or timeout), the
failures by endpoint, every acknowledged submit [client uuid, status, monotonic time], the client
UUIDs still in flight when the run stopped, error kinds, sessions started/done, and the steps' windows.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paint_payloads import PaintBodies  # noqa: E402

REQUEST_TIMEOUT_S = 60


class HttpError(Exception):
    """No HTTP answer: connection refused/reset/closed, or a timeout."""


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closed it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUser-Agent: loadgen-participant/1.0\r\n"
                "Accept: application/json\r\n")
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        data = head.encode() + b"\r\n" + (body or b"")
        for attempt in range(2):
            reused = self.writer is not None
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.write(data)
                await self.writer.drain()
                return await asyncio.wait_for(self._answer(), REQUEST_TIMEOUT_S)
            except _StaleConnection:
                # The server had closed this idle keep-alive connection before reading the request
                # (nothing came back): send it again on a new one, as browsers do.
                self.close()
                if reused and attempt == 0:
                    continue
                raise HttpError("connection closed before an answer") from None
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as error:
                self.close()
                raise HttpError(f"{type(error).__name__}: {error}"[:80]) from None
        raise HttpError("unreachable")

    async def _answer(self) -> tuple[int, bytes]:
        reader = self.reader
        line = await reader.readline()
        if not line:
            raise _StaleConnection()
        status = int(line.split(b" ", 2)[1])
        length, chunked, close = None, False, False
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            payload = b"".join(parts)
        elif length is not None:
            payload = await reader.readexactly(length)
        else:
            payload, close = await reader.read(), True
        if close:
            self.close()
        return status, payload


class _StaleConnection(Exception):
    pass


class Recorder:
    def __init__(self):
        self.latency: dict[str, list[float]] = {}
        self.requests: list[tuple[str, float, float, int]] = []
        self.failures: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.acks: list[tuple[str, int, float]] = []
        self.in_flight: set[str] = set()
        self.sessions = {"started": 0, "done": 0}
        self.gave_up: dict[str, int] = {}  # requests that failed for good: retries exhausted or not retryable

    def give_up(self, name: str) -> None:
        self.gave_up[name] = self.gave_up.get(name, 0) + 1

    async def call(self, conn: Connection, name: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        t0 = time.monotonic()
        try:
            status, payload = await conn.request(method, path, body)
        except HttpError as error:
            status, payload = 0, str(error).encode()
        t1 = time.monotonic()
        self.requests.append((name, t1, 1000 * (t1 - t0), status))
        if 200 <= status < 300:
            self.latency.setdefault(name, []).append(1000 * (t1 - t0))
        else:
            self.failures[name] = self.failures.get(name, 0) + 1
            kind = f"{name}: {status} {payload[:60].decode(errors='replace')}"
            self.errors[kind] = self.errors.get(kind, 0) + 1
        return status, payload


def retryable(status: int) -> bool:
    return status in (0, 429) or status >= 500


class Participant:
    def __init__(self, rec: Recorder, bodies: PaintBodies, host: str, port: int, slug: str, think: tuple[float, float],
                 rng: random.Random):
        self.rec, self.bodies, self.slug, self.think, self.rng = rec, bodies, slug, think, rng
        self.conn = Connection(host, port)

    async def _json(self, name: str, method: str, path: str, body: bytes | None = None, ok=(200,), attempts: int = 6):
        for attempt in range(attempts):
            status, payload = await self.rec.call(self.conn, name, method, path, body)
            if status in ok:
                return json.loads(payload)
            if not retryable(status):
                break
            await asyncio.sleep(0.5 * 2**attempt)
        self.rec.give_up(name)
        return None

    async def session(self) -> bool:
        """One whole session; True if it ended with the completion."""
        rec = self.rec
        rec.sessions["started"] += 1
        try:
            body = json.dumps({"consent": True, "external_id": f"load-{uuid.uuid4().hex}"}).encode()
            started = await self._json("consent", "POST", f"/api/v1/studies/{self.slug}/participants/", body, ok=(200, 201))
            if started is None:
                return False
            token = started["token"]
            data = await self._json("next", "GET", f"/api/v1/participant/{token}/next/")
            while data is not None and not data["done"]:
                trial = data["trial"]
                status, _ = await rec.call(self.conn, "image", "GET", trial["image_url"])
                if not 200 <= status < 300:
                    rec.give_up("image")  # a picture is not retried: the participant sees a broken page
                think = self.rng.uniform(*self.think)
                await asyncio.sleep(think)
                data = await self._submit(token, trial, int(1000 * think))
                if data is None:
                    data = await self._json("next", "GET", f"/api/v1/participant/{token}/next/")
            if data is not None and data["done"]:
                rec.sessions["done"] += 1
                return True
            return False
        finally:
            self.conn.close()

    async def _submit(self, token: str, trial: dict, duration_ms: int) -> dict | None:
        client_uuid = str(uuid.uuid4())
        body = self.bodies.body(trial, client_uuid, duration_ms)
        path = f"/api/v1/participant/{token}/trials/{trial['id']}/response/"
        self.rec.in_flight.add(client_uuid)
        for attempt in range(20):  # the page's backoff: same UUID every time
            status, payload = await self.rec.call(self.conn, "submit", "POST", path, body)
            if status in (200, 201):
                self.rec.acks.append((client_uuid, status, time.monotonic()))
                self.rec.in_flight.discard(client_uuid)
                return json.loads(payload).get("next")
            if not retryable(status):
                self.rec.in_flight.discard(client_uuid)
                break
            await asyncio.sleep(min(0.25 * 2**attempt, 8))
        self.rec.give_up("submit")
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def launch(args, rec: Recorder, make) -> list:
    rng = random.Random(args.seed)
    arrivals = sorted(rng.uniform(0, args.arrive) for _ in range(args.users))
    t0 = time.monotonic()

    async def one(at: float):
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        await make().session()

    tasks = [asyncio.create_task(one(at)) for at in arrivals]
    done, pending = await asyncio.wait(tasks, timeout=args.duration)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return []


async def steps(args, rec: Recorder, make) -> list:
    levels = [int(x) for x in args.steps.split(",")]
    rng = random.Random(args.seed)
    slots: list[asyncio.Task] = []

    async def slot(delay: float):
        await asyncio.sleep(delay)
        while True:
            await make().session()
            await asyncio.sleep(rng.uniform(0, 1))  # the next participant arrives

    windows = []
    for level in levels:
        start = time.monotonic()
        add = level - len(slots)
        slots += [asyncio.create_task(slot(args.ramp * i / max(add, 1))) for i in range(max(add, 0))]
        await asyncio.sleep(args.ramp)
        hold_start = time.monotonic()
        await asyncio.sleep(args.hold)
        end = time.monotonic()
        submits = [lat for name, t, lat, status in rec.requests if name == "submit" and hold_start <= t < end and status]
        p99 = percentile(submits, 99)
        windows.append({"participants": level, "start": start, "hold_start": hold_start, "end": end, "p99_submit_ms": p99})
        print(f"step {level} participants: p99 submit {p99:.0f} ms over {len(submits)} submits", file=sys.stderr, flush=True)
        if p99 > args.slo_ms:
            break
    for task in slots:
        task.cancel()
    await asyncio.gather(*slots, return_exceptions=True)
    return windows


async def run(args) -> dict:
    rec = Recorder()
    bodies = PaintBodies(seed=args.seed)
    think = tuple(float(x) for x in args.think.split("-"))
    rng = random.Random(args.seed + 1)

    def make() -> Participant:
        return Participant(rec, bodies, args.host, args.port, args.slug, think, rng)

    began = time.monotonic()
    windows = await (steps(args, rec, make) if args.steps else launch(args, rec, make))
    return {"latency_ms": rec.latency, "requests": rec.requests, "failures": rec.failures, "acks": rec.acks,
            "in_flight": sorted(rec.in_flight), "errors": rec.errors, "gave_up": rec.gave_up, "sessions": rec.sessions, "steps": windows,
            "began": began, "ended": time.monotonic()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slug", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--arrive", type=float, default=120, help="launch: participants arrive over this many seconds")
    parser.add_argument("--duration", type=float, default=1800, help="launch: cap in seconds")
    parser.add_argument("--think", default="8-20", help="seconds a participant paints one trial, min-max (uniform)")
    parser.add_argument("--steps", help="closed loop: participants at a time, e.g. 100,200,400")
    parser.add_argument("--ramp", type=float, default=15)
    parser.add_argument("--hold", type=float, default=60)
    parser.add_argument("--slo-ms", type=float, default=500)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
