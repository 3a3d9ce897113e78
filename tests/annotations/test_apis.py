import json
import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.models import Participant, Response, Trial
from annotations.payloads import MAX_BODY_BYTES, MAX_POINTS
from tests.annotations.test_participation import tiny_study
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


def start(client, study, **extra):
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": True, **extra}, format="json")
    assert answer.status_code in (200, 201), answer.content
    return answer.json()["token"]


def next_trial(client, token):
    return client.get(reverse("participant-trial-next", args=[token])).json()["trial"]


def test_participant_journey_through_the_api(client, make_study):
    study = make_study(launch=True)
    token = start(client, study, external_id="PROLIFIC-1")
    for i in range(2):
        nxt = client.get(reverse("participant-trial-next", args=[token])).json()
        assert nxt["done"] is False and nxt["progress"] == {"done": i, "total": 2}
        trial = nxt["trial"]
        assert trial["task_kind"] == "paint" and trial["label"] in ("Egyptian cat", "espresso")
        assert trial["display"]["width"] == 500 and trial["params"]["min_area"] == 0.005
        assert trial["params"]["brush_radii"][0] == pytest.approx(6 * max(trial["width"], trial["height"]) / 500, abs=1e-3)
        assert "role" not in trial and "known_region" not in trial  # catch trials look like any other
        image = client.get(trial["image_url"])
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        body = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(5, 5, 60, 60)]), "duration_ms": 3000}
        url = reverse("participant-response", args=[token, trial["id"]])
        assert client.post(url, body, format="json").status_code == 201
        assert client.post(url, body, format="json").status_code == 200  # the retry stores nothing new
    done = client.get(reverse("participant-trial-next", args=[token])).json()
    assert done["done"] is True and done["completion_code"] == study.completion_code
    assert Response.objects.count() == 2


def test_consent_is_required(client, make_study):
    study = make_study(launch=True)
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": False}, format="json")
    assert answer.status_code == 400 and answer.json()["error"] == "consent_required"
    assert Participant.objects.count() == 0


def test_a_full_study_answers_410(client, researcher):
    study = tiny_study(researcher, n_main=1, participants_per_stimulus=1, stimuli_per_participant=1)
    token = start(client, study)
    next_trial(client, token)
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json")
    assert answer.status_code == 410 and answer.json()["error"] == "study_full"


def test_practice_and_calibration_endpoints(client, researcher):
    study = tiny_study(researcher, task_kinds=["bubble"], task_params={"units": "deg"})
    token = start(client, study)
    assert client.get(reverse("participant-trial-next", args=[token])).json()["error"] == "calibration_required"
    bad = client.post(reverse("participant-calibration", args=[token]), {"card_width_px": "wide"}, format="json")
    assert bad.status_code == 400 and "card_width_px" in bad.json()["fields"]
    calibrated = client.post(reverse("participant-calibration", args=[token]), {"card_width_px": 342.4, "dpr": 2}, format="json")
    assert calibrated.status_code == 200 and calibrated.json()["px_per_cm"] == pytest.approx(40.0)
    practice = client.get(reverse("participant-practice", args=[token])).json()
    assert practice["task_kind"] == "bubble" and practice["done"] is False and practice["region"]["polygons"]
    assert practice["params"]["min_clicks"] == 2 and practice["params"]["viewing_ms"] == 10000
    image = client.get(practice["image_url"])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    payload = {"display": practice["display"], "pointer_types": ["mouse"], "clicks": [[300, 215, 900]],
               "bubble_radius": 30, "blur_sigma": 30, "viewing_ms": 10000}
    refused = client.post(reverse("participant-practice", args=[token]), {"payload": payload}, format="json")
    assert refused.status_code == 400 and "clicks" in refused.json()["fields"]
    payload["clicks"].append([310, 220, 1800])
    assert client.post(reverse("participant-practice", args=[token]), {"payload": payload}, format="json").status_code == 200
    assert Participant.objects.get(token=token).practice_done_at is not None
    assert Response.objects.count() == 0 and Trial.objects.count() == 0


# --- bad input: each a clear 4xx, and nothing stored ---------------------------------------------


def _raw_post(client, url, text):
    return client.generic("POST", url, text, content_type="application/json")


def _nan_body():
    return '{"client_uuid": "%s", "payload": {"display": {"width": 500, "height": 400}, "strokes": [{"radius": 5, "points": [[NaN, 3, 0]]}]}}' % uuid.uuid4()


@pytest.mark.parametrize(
    "body,status,field",
    [
        ({"client_uuid": "not-a-uuid", "payload": {}}, 400, "client_uuid"),
        ({"payload": {}}, 400, "client_uuid"),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 5, "points": [[9999, 1, 0]]}])}, 400, "strokes[0].points[0].x"),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 5, "points": [[1, -0.5, 0]]}])}, 400, "strokes[0].points[0].y"),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 5, "points": [[1, 1, -20]]}])}, 400, "strokes[0].points[0].t"),
        ({"client_uuid": "U", "payload": paint_payload([])}, 400, "strokes"),
        ({"client_uuid": "U", "payload": "strokes"}, 400, "payload"),
        ({"client_uuid": "U", "payload": paint_payload([rect_stroke(5, 5, 60, 60)]), "duration_ms": -1}, 400, "duration_ms"),
        (_nan_body(), 400, "strokes[0].points[0].x"),
        ('{"client_uuid": ', 400, None),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 1, "points": [[1, 1, 0]] * (MAX_POINTS + 1)}])}, 413, "strokes"),
    ],
)
def test_bad_submits_get_a_clear_4xx_and_store_nothing(client, researcher, body, status, field):
    study = tiny_study(researcher)
    token = start(client, study)
    trial = next_trial(client, token)
    url = reverse("participant-response", args=[token, trial["id"]])
    if isinstance(body, dict):
        body = json.dumps({**body, "client_uuid": str(uuid.uuid4())} if body.get("client_uuid") == "U" else body)
    answer = _raw_post(client, url, body)
    assert answer.status_code == status, answer.content[:300]
    assert answer.json()["detail"]
    if field:
        assert field in answer.json()["fields"], answer.json()
    assert Response.objects.count() == 0
    assert Trial.objects.get(pk=trial["id"]).status == Trial.Status.ASSIGNED


def test_an_oversized_body_is_413_before_it_is_read(client, researcher):
    study = tiny_study(researcher)
    token = start(client, study)
    trial = next_trial(client, token)
    points = [[1.25, 1.25, 1]] * (MAX_BODY_BYTES // 15)
    body = json.dumps({"client_uuid": str(uuid.uuid4()), "payload": paint_payload([{"radius": 2, "points": points}])})
    assert len(body) > MAX_BODY_BYTES
    answer = _raw_post(client, reverse("participant-response", args=[token, trial["id"]]), body)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large" and str(MAX_BODY_BYTES) in answer.json()["detail"]
    assert Response.objects.count() == 0


def test_foreign_trials_forged_and_reused_tokens(client, researcher):
    study = tiny_study(researcher, stimuli_per_participant=1)
    alice, bob = start(client, study), start(client, study)
    trial = next_trial(client, alice)
    body = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(5, 5, 40, 40)])}
    # a trial that is not the participant's
    assert client.post(reverse("participant-response", args=[bob, trial["id"]]), body, format="json").status_code == 404
    assert client.get(reverse("participant-trial-image", args=[bob, trial["id"]])).status_code == 404
    # forged tokens
    forged = "x" * 43
    for url in [reverse("participant-trial-next", args=[forged]), reverse("participant-practice", args=[forged]),
                reverse("participant-trial-image", args=[forged, trial["id"]])]:
        assert client.get(url).status_code == 404
    assert client.post(reverse("participant-response", args=[forged, trial["id"]]), body, format="json").status_code == 404
    assert client.post(reverse("participant-calibration", args=[forged]), {"card_width_px": 300}, format="json").status_code == 404
    assert Response.objects.count() == 0
    # alice finishes; her token used again for a new answer is refused, a retry of her last one is not
    url = reverse("participant-response", args=[alice, trial["id"]])
    assert client.post(url, body, format="json").status_code == 201
    assert client.get(reverse("participant-trial-next", args=[alice])).json()["done"] is True
    assert client.post(url, body, format="json").status_code == 200  # the same client UUID: a retry
    again = client.post(url, {**body, "client_uuid": str(uuid.uuid4())}, format="json")
    assert again.status_code == 410 and "finished" in again.json()["detail"]
    # a client UUID reused for another trial
    bobs = next_trial(client, bob)
    reused = client.post(reverse("participant-response", args=[bob, bobs["id"]]), body, format="json")
    assert reused.status_code == 409
    assert Response.objects.count() == 1


def test_a_client_uuid_reused_for_another_of_ones_own_trials_is_409(client, researcher):
    study = tiny_study(researcher, stimuli_per_participant=2)
    token = start(client, study)
    key = str(uuid.uuid4())
    first = next_trial(client, token)
    body = {"client_uuid": key, "payload": paint_payload([rect_stroke(5, 5, 40, 40)])}
    assert client.post(reverse("participant-response", args=[token, first["id"]]), body, format="json").status_code == 201
    second = next_trial(client, token)
    answer = client.post(reverse("participant-response", args=[token, second["id"]]), body, format="json")
    assert answer.status_code == 409 and "another trial" in answer.json()["detail"]
    assert Response.objects.count() == 1
