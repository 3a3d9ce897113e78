"""Many participants arriving at once, over real HTTP (Django's threaded live server, one database
connection per request thread) on PostgreSQL: no stimulus gets more than N per task kind, abandoned
leases come back to the pool, none stays short while participants remain, and no response is lost
or stored twice, even when every submit is sent twice at the same moment."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image

from annotations.models import Response, Stimulus, Trial
from studyserver.researcher.services import studies
from tests.annotations.test_participation import bubble, paint, tiny_study
from tests.conftest import png_bytes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

N, K = 3, 3


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    """One request; on a refused or reset connection (the test server's accept queue is short) it is
    sent again after a pause, as the participant page does. Safe: submits are idempotent."""
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(8):
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.05 * 2**attempt)
    raise ConnectionError(f"{method} {url}: no answer after 8 attempts")


class Ledger:
    """What the clients were told: every submit's client UUID and the status codes it got."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers: dict[str, list[int]] = {}
        self.refused_at_start = 0
        self.unserved = 0  # consented, but the study had nothing left for them
        self.abandoned: list[str] = []
        self.to_abandon = 0  # how many of the next participants served a first trial leave with it
        self.errors: list[str] = []

    def note(self, key: str, status: int) -> None:
        with self.lock:
            self.answers.setdefault(key, []).append(status)

    def leaves(self, token: str) -> bool:
        """Whether this participant, just served a first trial, is one who leaves holding it."""
        with self.lock:
            if self.to_abandon <= 0:
                return False
            self.to_abandon -= 1
            self.abandoned.append(token)
            return True


def participant_session(base: str, slug: str, ledger: Ledger, barrier: threading.Barrier) -> None:
    try:
        _session(base, slug, ledger, barrier)
    except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
        ledger.errors.append(f"{type(exc).__name__}: {exc}")
        barrier.abort()


def _session(base: str, slug: str, ledger: Ledger, barrier: threading.Barrier) -> None:
    """Consent, then take trials until done; every submit is sent twice at once (a double click, or
    a retry racing the first attempt). The first `ledger.to_abandon` participants served a trial leave
    holding it (which ones are served is the race's choice; that some leave is not).
    Everyone consents at the same moment, then asks for a first trial at the same moment."""
    barrier.wait()
    status, body = http("POST", f"{base}/api/v1/studies/{slug}/participants/", {"consent": True})
    barrier.wait()
    if status == 410:
        with ledger.lock:
            ledger.refused_at_start += 1
        return
    if status != 201:
        ledger.errors.append(f"start: {status} {body}")
        return
    token = body["token"]
    answered = 0
    while True:
        status, body = http("GET", f"{base}/api/v1/participant/{token}/next/")
        if status != 200:
            ledger.errors.append(f"next: {status} {body}")
            return
        if body["done"]:
            if answered == 0:
                with ledger.lock:
                    ledger.unserved += 1
            return
        trial = body["trial"]
        if answered == 0 and ledger.leaves(token):
            return
        payload = paint((5, 5, 40, 40)) if trial["task_kind"] == "paint" else bubble([[5, 5, 100], [30, 30, 900]])
        submit = {"client_uuid": str(uuid.uuid4()), "payload": payload, "duration_ms": 1000}
        url = f"{base}/api/v1/participant/{token}/trials/{trial['id']}/response/"
        with ThreadPoolExecutor(2) as twice:
            statuses = [f.result()[0] for f in [twice.submit(http, "POST", url, submit) for _ in range(2)]]
        for s in statuses:
            ledger.note(submit["client_uuid"], s)
        if sorted(statuses) != [200, 201]:
            ledger.errors.append(f"submit twice: {statuses}")
            return
        answered += 1


def arrive_together(base: str, slug: str, ledger: Ledger, n: int, abandon: int = 0) -> None:
    ledger.to_abandon = abandon
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=participant_session, args=(base, slug, ledger, barrier)) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not any(t.is_alive() for t in threads), "a participant hung"


def slots(study) -> Counter:
    """(stimulus id, kind) -> trials holding a slot (answered, or assigned with a live lease)."""
    now = timezone.now()
    held = Counter()
    for trial in Trial.objects.filter(stimulus__study=study, stimulus__role="main"):
        if trial.status == Trial.Status.DONE or (trial.status == Trial.Status.ASSIGNED and trial.lease_expires_at > now):
            held[(trial.stimulus_id, trial.task_kind)] += 1
    return held


def test_many_participants_at_once_fill_every_stimulus_to_exactly_n(live_server, researcher):
    study = tiny_study(researcher, n_main=4, participants_per_stimulus=N, stimuli_per_participant=K,
                       task_kinds=["paint", "bubble"], launch=False)
    for source in list(study.stimuli.all()[:2]):  # a second condition of two of the images
        inverted = 255 - np.asarray(Image.open(source.rendition.path).convert("RGB"))
        studies.stimulus_create(study=study, data=png_bytes(inverted), filename=f"variant-{source.pk}.png",
                                class_index=285, condition="inverted", source=source)
    study = studies.study_launch(study=study)
    main = list(Stimulus.objects.filter(study=study, role="main").values_list("id", flat=True))
    assert len(main) == 6  # capacity: 6 stimuli x N=3 x 2 kinds = 36 slots, K=3 each

    # Phase 1: 30 arrive at once; the first 4 served (a third of the 12 the study can take) leave with
    # their first trial still leased.
    ledger = Ledger()
    arrive_together(live_server.url, study.slug, ledger, 30, abandon=4)
    assert not ledger.errors, ledger.errors[:5]
    held = slots(study)
    assert max(held.values()) <= N, held
    assert len(ledger.abandoned) == 4

    # 30 minutes later: the abandoned leases have run out. Phase 2: 25 more arrive at once.
    Trial.objects.filter(participant__token__in=ledger.abandoned, status=Trial.Status.ASSIGNED).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1))
    arrive_together(live_server.url, study.slug, ledger, 25)
    assert not ledger.errors, ledger.errors[:5]

    # Every stimulus has exactly N answers per kind, and participants were left over (refused as the
    # study was full, or consented but found nothing left): so none stayed short for want of them
    answered = Counter(Response.objects.filter(trial__stimulus__study=study).values_list("trial__stimulus_id", "trial__task_kind"))
    assert answered == Counter({(s, kind): N for s in main for kind in ("paint", "bubble")}), answered
    assert ledger.refused_at_start + ledger.unserved > 0
    assert Trial.objects.filter(participant__token__in=ledger.abandoned, status=Trial.Status.EXPIRED).count() == len(ledger.abandoned)
    # Nothing lost, nothing doubled: each acknowledged submit stored once, each stored one acknowledged
    stored = Counter(str(u) for u in Response.objects.values_list("client_uuid", flat=True))
    assert set(stored) == set(ledger.answers) and max(stored.values()) == 1
    assert all(sorted(codes) == [200, 201] for codes in ledger.answers.values())
    # Nobody saw a stimulus twice or two conditions of one source image, nor more than K
    per_participant = {}
    for participant_id, stimulus_id, source_id in Trial.objects.filter(stimulus__study=study).values_list(
            "participant_id", "stimulus_id", "stimulus__source_id"):
        per_participant.setdefault(participant_id, []).append(source_id or stimulus_id)
    assert all(len(sources) == len(set(sources)) and len(sources) <= K for sources in per_participant.values())
