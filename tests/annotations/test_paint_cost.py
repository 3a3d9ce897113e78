"""The paint memory bomb through the real endpoints: one stroke of many points with a brush as large as
the image. Each answer comes fast, with bounded memory, a clear 4xx, and nothing stored."""
import time
import tracemalloc
import uuid

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.models import Participant, Response
from annotations.payloads import radius_max
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db

# The bounds each answer must meet, in CPU seconds of this process (the machine may be busy) and MiB
# allocated at the peak: the old rasteriser took ~13 s and ~1.7 GB on 15,000 points.
CPU_SECONDS, MIB = 4.0, 64


def _bomb(n, radius, width, height):
    rng = np.random.default_rng(n)
    points = [[round(float(x), 2), round(float(y), 2), i] for i, (x, y) in
              enumerate(zip(rng.uniform(0, width, n), rng.uniform(0, height, n)))]
    return paint_payload([{"radius": radius, "erase": False, "points": points}], width, height)


def _post_measured(client, url, body):
    """(answer, CPU seconds, peak MiB traced during the request)."""
    tracemalloc.start()
    try:
        start = time.process_time()
        answer = client.post(url, body, format="json")
        return answer, time.process_time() - start, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


@pytest.fixture
def participant_trial(make_study):
    client = APIClient()
    study = make_study(launch=True)
    token = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json").json()["token"]
    trial = client.get(reverse("participant-trial-next", args=[token])).json()["trial"]
    return client, token, trial


@pytest.mark.parametrize(
    "n,brush,statuses,field",
    [
        (15_000, "image", {400}, "strokes[0].radius"),  # the report's payload: a brush the size of the image
        # The widest brush accepted: over the work limit (413, refused from its points alone) or just
        # under it on the smaller photo, then rasterised within the limit and refused by its area (400).
        (15_000, "largest", {400, 413}, "strokes"),
        (50_000, "largest", {413}, "strokes"),
    ],
)
def test_the_paint_bomb_is_refused_fast_in_bounded_memory_at_submit_and_practice(participant_trial, n, brush, statuses, field):
    client, token, trial = participant_trial
    width, height = trial["width"], trial["height"]
    practice = client.get(reverse("participant-practice", args=[token])).json()
    targets = [
        (reverse("participant-response", args=[token, trial["id"]]), width, height, {"client_uuid": str(uuid.uuid4())}),
        (reverse("participant-practice", args=[token]), practice["width"], practice["height"], {}),
    ]
    for url, w, h, extra in targets:
        radius = float(max(w, h)) if brush == "image" else radius_max(w, h, {"brush_radii": [0]})
        answer, seconds, peak = _post_measured(client, url, {**extra, "payload": _bomb(n, radius, w, h)})
        assert answer.status_code in statuses, answer.content[:300]
        assert field in answer.json()["fields"] and answer.json()["detail"]
        print(f"{n} points, radius {radius:g} on {w} x {h}: {answer.status_code} in {seconds:.2f} CPU s, {peak:.1f} MiB")
        assert seconds < CPU_SECONDS and peak < MIB, f"{url}: {seconds:.2f} CPU s, {peak:.0f} MiB"
    assert Response.objects.count() == 0
    assert Participant.objects.get(token=token).practice_done_at is None


def test_a_normal_paint_answer_still_passes_both_endpoints(participant_trial):
    client, token, trial = participant_trial
    practice = client.get(reverse("participant-practice", args=[token])).json()
    ok = client.post(reverse("participant-practice", args=[token]),
                     {"payload": paint_payload([rect_stroke(230, 145, 370, 285, radius=10)], practice["width"], practice["height"])},
                     format="json")
    assert ok.status_code == 200, ok.content[:300]
    body = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(20, 20, 200, 200, radius=12)], trial["width"], trial["height"])}
    answer, seconds, peak = _post_measured(client, reverse("participant-response", args=[token, trial["id"]]), body)
    assert answer.status_code == 201 and peak < MIB
