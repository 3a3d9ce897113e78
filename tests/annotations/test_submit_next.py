"""A saved answer carries the next trial (what GET next would answer), saving the page a round trip."""
import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.models import Trial
from tests.annotations.test_apis import start
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


def test_the_answer_to_a_submit_carries_the_next_trial_then_the_completion(make_study):
    client = APIClient()
    study = make_study(launch=True)
    token = start(client, study)
    first = client.get(reverse("participant-trial-next", args=[token])).json()["trial"]
    submit = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(20, 20, 200, 200)])}
    saved = client.post(reverse("participant-response", args=[token, first["id"]]), submit, format="json")
    assert saved.status_code == 201
    upcoming = saved.json()["next"]
    assert upcoming["done"] is False and upcoming["progress"] == {"done": 1, "total": 2}
    assert upcoming["trial"]["id"] != first["id"] and upcoming["trial"]["position"] == 1
    # it is the participant's open trial: GET next resumes the same one
    assert client.get(reverse("participant-trial-next", args=[token])).json()["trial"]["id"] == upcoming["trial"]["id"]
    assert Trial.objects.filter(participant__token=token).count() == 2

    last = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(20, 20, 200, 200)])}
    done = client.post(reverse("participant-response", args=[token, upcoming["trial"]["id"]]), last, format="json").json()["next"]
    assert done["done"] is True and done["completion_code"] == study.completion_code
    # a retry of an earlier answer stores nothing and still says where the participant is
    again = client.post(reverse("participant-response", args=[token, first["id"]]), submit, format="json")
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["next"]["done"] is True


def test_a_paused_study_still_acknowledges_the_answer_with_no_next(make_study):
    from studyserver.researcher.services import studies

    client = APIClient()
    study = make_study(launch=True)
    token = start(client, study)
    first = client.get(reverse("participant-trial-next", args=[token])).json()["trial"]
    studies.study_pause(study=study)
    submit = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(20, 20, 200, 200)])}
    saved = client.post(reverse("participant-response", args=[token, first["id"]]), submit, format="json")
    assert saved.status_code == 201 and saved.json()["next"] is None  # the page asks GET next, which says paused
    assert client.get(reverse("participant-trial-next", args=[token])).json()["error"] == "study_paused"
