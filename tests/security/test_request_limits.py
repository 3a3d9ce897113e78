"""Hostile bytes get a 400/413 that names the problem, never a 500, and store nothing: NUL characters
(PostgreSQL cannot store U+0000), nesting deeper than json can parse, numbers out of range, bodies
over the limit (declared or real), uploads that are not what they claim."""
import io
import json
import uuid

import pytest
from django.conf import settings
from django.urls import reverse
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Participant, Response, Stimulus, Study
from studyserver.request_limits import MAX_JSON_DEPTH, json_depth_exceeds
from tests.annotations.test_participation import tiny_study
from tests.annotations.zipfiles import make_zip, pixel_bomb_png, png
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient(raise_request_exception=False)


@pytest.fixture
def api(researcher):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    return client


@pytest.fixture
def trial_url(client, researcher):
    study = tiny_study(researcher)
    token = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json").json()["token"]
    trial = client.get(reverse("participant-trial-next", args=[token])).json()["trial"]
    return reverse("participant-response", args=[token, trial["id"]])


def raw(client, method, url, text, **extra):
    return getattr(client, method)(url, text, content_type="application/json", **extra)


def refused(answer, status=400, word=None):
    assert answer.status_code == status, (answer.status_code, answer.content[:300])
    body = answer.json()
    assert body["error"] and body["detail"], body
    if word:
        assert word in body["detail"], body["detail"]
    return body


def good_body(**payload_extra):
    return {"client_uuid": str(uuid.uuid4()), "payload": {**paint_payload([rect_stroke(5, 5, 40, 40, radius=2.0)]), **payload_extra}}


def test_nul_characters_in_a_participants_json_are_400(client, trial_url):
    for text in [json.dumps(good_body(user_agent="agent\u0000")),           # the \u0000 escape
                 json.dumps(good_body()).replace("mouse", "mou\x00se")]:    # a raw NUL byte
        refused(raw(client, "post", trial_url, text), word="NUL")
    ok = json.dumps(good_body(user_agent="C:\\u0000dir"))  # the text backslash-u0000 is no NUL
    assert raw(client, "post", trial_url, ok).status_code == 201
    assert "\x00" not in json.dumps(Response.objects.get().payload)


def test_nul_characters_in_urls_and_forms(client, api, researcher):
    study = tiny_study(researcher)
    refused(client.get("/api/v1/participant/a%00b/next/"), word="NUL")
    refused(client.get("/p/a%00b/"), word="NUL")
    refused(client.get(f"/s/{study.slug}/?PROLIFIC_PID=a%00b"), word="NUL")
    refused(api.put(f"/api/v1/studies/{study.slug}/shares/a%00b/", {"role": "view"}, format="json"), word="NUL")
    refused(raw(api, "post", "/api/v1/studies/", json.dumps({"title": "t", "consent_text": "a\u0000b"})), word="NUL")
    # the consent form's hidden Prolific ids: the NUL is dropped, the participant kept
    form = APIClient()
    answer = form.post(reverse("study-entry", args=[study.slug]), {"consent": "yes", "PROLIFIC_PID": "ab\x00c"})
    assert answer.status_code == 302
    assert Participant.objects.get().external_id == "abc"


def test_json_nested_past_the_parser_is_400(client, api, trial_url):
    deep = "[" * 100_000 + "]" * 100_000
    refused(raw(client, "post", trial_url, '{"client_uuid": "%s", "payload": %s}' % (uuid.uuid4(), deep)), word="nested")
    refused(raw(api, "post", "/api/v1/studies/", '{"title": "t", "task_params": %s}' % deep), word="nested")
    moderately = '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    refused(raw(api, "post", "/api/v1/studies/", '{"title": "t", "task_params": %s}' % moderately), word="nested")
    assert not Study.objects.filter(title="t").exists() and not Response.objects.exists()


def test_the_depth_walk_is_iterative_and_exact():
    value = 1
    for _ in range(MAX_JSON_DEPTH):
        value = [value]
    assert not json_depth_exceeds(value) and json_depth_exceeds([value])
    very = {}
    for _ in range(50_000):
        very = {"a": very}
    assert json_depth_exceeds(very)  # no RecursionError


def test_numbers_out_of_range_are_400(client, api, trial_url):
    body = good_body()
    body["payload"]["strokes"][0]["points"][0][0] = "INF"
    text = json.dumps(body).replace('"INF"', "1e400")
    refused(raw(client, "post", trial_url, text), word="finite")
    huge = '{"client_uuid": "%s", "duration_ms": %s, "payload": {}}' % (uuid.uuid4(), "9" * 5000)
    refused(raw(client, "post", trial_url, huge))
    refused(raw(client, "post", trial_url, json.dumps({**good_body(), "duration_ms": 10**30})))
    refused(raw(api, "post", "/api/v1/studies/", json.dumps({"title": "t", "participants_per_stimulus": 10**20})))
    refused(raw(api, "post", "/api/v1/studies/", '{"title": "t", "task_params": {"paint": {"min_area": 1e400}}}'))
    assert not Response.objects.exists() and not Study.objects.filter(title="t").exists()


def test_bodies_over_the_limit_are_413_even_where_anyone_may_post(client):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    big = json.dumps({"username": "x" * (limit + 10), "password": "y"})
    body = refused(raw(client, "post", reverse("api-token"), big), 413)
    assert str(limit) in body["detail"]
    # a declared length is enough: nothing is read
    refused(raw(client, "post", reverse("api-token"), "{}", CONTENT_LENGTH=str(10**10)), 413)
    form = client.post(reverse("api-token"), "a=" + "x" * (limit + 10), content_type="application/x-www-form-urlencoded")
    refused(form, 413)


def test_uploads_that_are_not_what_they_claim(api, researcher):
    study = Study.objects.create(owner=researcher, slug=f"u-{uuid.uuid4().hex[:8]}", title="uploads")
    url = reverse("api-stimuli", args=[study.slug])

    def upload(data, name):
        handle = io.BytesIO(data)
        handle.name = name
        return api.post(url, {"image": handle}, format="multipart")

    refused(upload(b"<html><script>alert(1)</script></html>", "page.png"), word="not a readable image")
    refused(upload(png()[:200], "cut.png"), word="not a readable image")
    refused(upload(pixel_bomb_png(6000), "bomb.png"), word="pixels")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    refused(upload(svg, "vector.svg"))
    ico = io.BytesIO()
    Image.new("RGB", (32, 32)).save(ico, format="ICO")
    refused(upload(ico.getvalue(), "icon.ico"), word="not accepted")
    # a good image under an odd name: stored under a name of our making, served as what it is
    answer = upload(png(seed=3), "x.pn g")
    assert answer.status_code == 201, answer.content
    stimulus = Stimulus.objects.get(study=study)
    assert stimulus.image.name.endswith(".img") and stimulus.sha256 in stimulus.image.name
    served = api.get(reverse("api-stimulus-image", args=[study.slug, stimulus.pk]))
    assert served["Content-Type"] == "image/png" and served["X-Content-Type-Options"] == "nosniff"
    assert Stimulus.objects.count() == 1


def test_zip_uploads_with_traversal_or_bombs_are_refused_whole(api, researcher):
    study = Study.objects.create(owner=researcher, slug=f"z-{uuid.uuid4().hex[:8]}", title="zips")
    url = reverse("api-stimuli-zip", args=[study.slug])
    labels = b"file,class\n../evil.png,285\nok.png,285\n"
    archive = io.BytesIO(make_zip({"../evil.png": png(seed=1), "ok.png": png(seed=2), "labels.csv": labels}))
    archive.name = "a.zip"
    body = refused(api.post(url, {"archive": archive}, format="multipart"), word="traversal")
    assert body["fields"]
    bomb = io.BytesIO(make_zip({"big.png": b"\0" * (8 * 1024 * 1024), "labels.csv": b"file,class\nbig.png,285\n"}))
    bomb.name = "b.zip"
    refused(api.post(url, {"archive": bomb}, format="multipart"), word="bomb")
    assert not Stimulus.objects.exists()
