"""Participant tokens: unguessable, bound to one participant of one study, dead with the study or the
participant's end; no participant reaches another's trials, images or responses."""
import base64
import uuid

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Participant, Response, Trial, participant_token
from studyserver.researcher.services import studies
from tests.annotations.test_participation import tiny_study
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


def start(client, study):
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()["token"]


def next_trial(client, token):
    answer = client.get(reverse("participant-trial-next", args=[token]))
    assert answer.status_code == 200, answer.content
    return answer.json()["trial"]


def body():
    return {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(5, 5, 40, 40, radius=2.0)])}


def submit(client, token, trial_id, data=None):
    return client.post(reverse("participant-response", args=[token, trial_id]), data or body(), format="json")


def participant_urls(token, trial_id):
    """Every participant endpoint of `token` (method, url, json body)."""
    return [
        ("get", reverse("participant-trial-next", args=[token]), None),
        ("post", reverse("participant-response", args=[token, trial_id]), body()),
        ("get", reverse("participant-trial-image", args=[token, trial_id]), None),
        ("post", reverse("participant-calibration", args=[token]), {"card_width_px": 320}),
        ("get", reverse("participant-practice", args=[token]), None),
        ("post", reverse("participant-practice", args=[token]), {"payload": {}}),
        ("get", reverse("participant-practice-image", args=[token]), None),
    ]


def test_tokens_carry_at_least_128_random_bits_and_never_repeat():
    tokens = [participant_token() for _ in range(5000)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens[:200]:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128, token
    # the bits are spread: every urlsafe character shows up in the first 5000 tokens' first characters
    assert len({token[0] for token in tokens}) == 64


def test_a_token_must_match_exactly(client, researcher):
    study = tiny_study(researcher)
    token = start(client, study)
    trial = next_trial(client, token)
    near = [token[:-1], token + "x", token.upper() if token.upper() != token else token.lower(),
            token[:-1] + ("A" if token[-1] != "A" else "B"), token[:22]]
    for other in near:
        for method, url, data in participant_urls(other, trial["id"]):
            answer = getattr(client, method)(url, data, format="json") if data else getattr(client, method)(url)
            assert answer.status_code == 404, (other, url, answer.status_code)
            assert answer.json()["error"] == "not_found"
    assert Response.objects.count() == 0


def test_one_participant_cannot_touch_anothers_trials(client, researcher):
    study = tiny_study(researcher, n_main=3, stimuli_per_participant=1, participants_per_stimulus=3)
    alice, bob = start(client, study), start(client, study)
    alices, bobs = next_trial(client, alice), next_trial(client, bob)
    # bob's token with alice's trial: her image, her answer slot
    assert client.get(reverse("participant-trial-image", args=[bob, alices["id"]])).status_code == 404
    assert submit(client, bob, alices["id"]).status_code == 404
    # alice answers; bob replays her client UUID on his own trial: refused, nothing of hers shown
    mine = body()
    first = submit(client, alice, alices["id"], mine)
    assert first.status_code == 201
    replay = submit(client, bob, bobs["id"], mine)
    assert replay.status_code == 409 and "response_id" not in replay.json()
    assert mine["client_uuid"] not in replay.content.decode()
    # and a retry of alice's own UUID through bob's token for her trial is still 404 (not her 200)
    assert submit(client, bob, alices["id"], mine).status_code == 404
    assert Trial.objects.get(pk=bobs["id"]).status == Trial.Status.ASSIGNED
    assert list(Response.objects.values_list("trial__participant__token", flat=True)) == [alice]


def test_a_token_works_only_for_its_own_study(client, researcher):
    first, second = tiny_study(researcher), tiny_study(researcher)
    token = start(client, first)
    other = start(client, second)
    theirs = next_trial(client, other)
    # a trial of another study through this token
    assert client.get(reverse("participant-trial-image", args=[token, theirs["id"]])).status_code == 404
    assert submit(client, token, theirs["id"]).status_code == 404
    # a participant token is no researcher credential, and a researcher's API token no participant token
    as_researcher = APIClient()
    as_researcher.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert as_researcher.get(reverse("api-study", args=[first.slug])).status_code == 401
    assert as_researcher.get(reverse("api-studies")).status_code == 401
    key = Token.objects.create(user=researcher).key
    assert client.get(reverse("participant-trial-next", args=[key])).status_code == 404
    assert Participant.objects.get(token=token).study_id == first.pk


def test_a_closed_study_takes_nothing_more(client, researcher):
    study = tiny_study(researcher)
    token = start(client, study)
    trial = next_trial(client, token)
    studies.study_close(study=study)
    answer = submit(client, token, trial["id"])
    assert answer.status_code == 410 and answer.json()["error"] == "study_closed", answer.content
    for url, data in [(reverse("participant-calibration", args=[token]), {"card_width_px": 320}),
                      (reverse("participant-practice", args=[token]), {"payload": {}})]:
        refused = client.post(url, data, format="json")
        assert refused.status_code == 410 and refused.json()["detail"], url
    # the open trial is not handed out again: the participant is done, closed early, and with no
    # answer they get no completion code (nor the recruiter's return address)
    done = client.get(reverse("participant-trial-next", args=[token])).json()
    assert done["done"] is True and "trial" not in done and done["closed_early"] is True
    assert done["completion_code"] is None and done["redirect_url"] == ""
    assert Participant.objects.get(token=token).status == Participant.Status.ACTIVE
    late = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json")
    assert late.status_code == 410
    assert Response.objects.count() == 0


def test_a_finished_participants_token_writes_nothing(client, researcher):
    study = tiny_study(researcher, stimuli_per_participant=1)
    token = start(client, study)
    trial = next_trial(client, token)
    kept = body()
    assert submit(client, token, trial["id"], kept).status_code == 201
    assert Participant.objects.get(token=token).status == Participant.Status.COMPLETED
    for url, data in [(reverse("participant-response", args=[token, trial["id"]]), body()),
                      (reverse("participant-calibration", args=[token]), {"card_width_px": 320}),
                      (reverse("participant-practice", args=[token]), {"payload": {}})]:
        refused = client.post(url, data, format="json")
        assert refused.status_code == 410 and "finished" in refused.json()["detail"], url
    assert submit(client, token, trial["id"], kept).status_code == 200  # a retry of the stored answer
    assert Response.objects.count() == 1
