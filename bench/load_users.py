"""Locust users for bench/load.py: each simulated participant takes one whole session over HTTP.

Session: consent (POST participants) -> GET next trial -> repeat [GET its image -> think -> POST a raw
paint payload, as the paint page sends it; the answer carries the next trial] until it says done. A submit that fails with 5xx, 429
or a connection error is retried with the same client UUID, as the page does. Run by bench/load.py
(which also reads LOAD_SLUG, LOAD_OUT, LOAD_THINK); not meant to be run alone.

Written to LOAD_OUT at the end: every acknowledged (2xx) client UUID with its status, the latencies
(ms) of every request by endpoint, failures by endpoint, and the times of the acknowledgements.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

import gevent
from locust import FastHttpUser, events, task
from locust.exception import StopUser

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paint_payloads import paint_payload  # noqa: E402

SLUG = os.environ.get("LOAD_SLUG", "")
OUT = os.environ.get("LOAD_OUT", "load-out.json")
THINK = tuple(float(x) for x in os.environ.get("LOAD_THINK", "1.0-3.0").split("-"))
USERS = int(os.environ.get("LOAD_USERS", "500"))

LATENCY: dict[str, list[float]] = {}
FAILURES: dict[str, int] = {}
ACKS: list[tuple[str, int, float]] = []  # (client uuid, status, monotonic time)
IN_FLIGHT: set[str] = set()  # sent, neither acknowledged nor refused (yet): cut off if the run stops
ERRORS: dict[str, int] = {}  # "endpoint: status / exception" -> count
SESSIONS = {"done": 0, "started": 0}


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **_):
    if exception is None:
        LATENCY.setdefault(name, []).append(response_time)
    else:
        FAILURES[name] = FAILURES.get(name, 0) + 1
        kind = f"{name}: {str(exception)[:60]}"
        ERRORS[kind] = ERRORS.get(kind, 0) + 1


@events.test_stop.add_listener
def _dump(environment, **_):
    with open(OUT, "w") as handle:
        json.dump({"latency_ms": LATENCY, "failures": FAILURES, "acks": ACKS, "sessions": SESSIONS,
                   "in_flight": sorted(IN_FLIGHT), "errors": ERRORS}, handle)


class Participant(FastHttpUser):
    """One participant, one whole session; then the user stops (the run ends when all have)."""

    @task
    def session(self):
        SESSIONS["started"] += 1
        body = {"consent": True, "external_id": f"load-{uuid.uuid4().hex}"}
        with self.client.post(f"/api/v1/studies/{SLUG}/participants/", json=body, name="consent", catch_response=True) as res:
            if res.status_code != 201:
                res.failure(f"consent {res.status_code}")
                raise StopUser()
            token = res.json()["token"]
        data = self._get_json(f"/api/v1/participant/{token}/next/", "next")
        while data is not None and not data["done"]:
            trial = data["trial"]
            self.client.get(trial["image_url"], name="image")
            gevent.sleep(random.uniform(*THINK))
            data = self._submit(token, trial)  # the answer carries the next trial, as the page uses it
            if data is None:
                data = self._get_json(f"/api/v1/participant/{token}/next/", "next")
        SESSIONS["done"] += 1
        if SESSIONS["done"] >= USERS:
            gevent.spawn_later(0.5, self.environment.runner.quit)
        raise StopUser()

    def _get_json(self, url: str, name: str):
        for attempt in range(6):
            with self.client.get(url, name=name, catch_response=True) as res:
                if res.status_code == 200:
                    return res.json()
                res.failure(f"{name} {res.status_code}")
            gevent.sleep(0.5 * 2**attempt)
        return None

    def _submit(self, token: str, trial: dict) -> dict | None:
        client_uuid = str(uuid.uuid4())
        body = {"client_uuid": client_uuid, "payload": paint_payload(trial), "duration_ms": random.randint(3000, 15000)}
        url = f"/api/v1/participant/{token}/trials/{trial['id']}/response/"
        IN_FLIGHT.add(client_uuid)
        for attempt in range(20):  # the page's backoff: same UUID every time
            with self.client.post(url, json=body, name="submit", catch_response=True) as res:
                if res.status_code in (200, 201):
                    ACKS.append((client_uuid, res.status_code, time.monotonic()))
                    IN_FLIGHT.discard(client_uuid)
                    return res.json().get("next")
                retry = res.status_code in (0, 429) or res.status_code >= 500
                res.failure(f"submit {res.status_code}: {res.text[:200] if res.text else ''}")
                if not retry:
                    IN_FLIGHT.discard(client_uuid)
                    return None
            gevent.sleep(min(0.25 * 2**attempt, 8))
        return None
