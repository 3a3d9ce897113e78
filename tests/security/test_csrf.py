"""CSRF: every session-authenticated form and API write needs the token; API-token and participant
writes (no cookie is their credential) do not."""
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from annotations.models import Participant, Study
from tests.annotations.test_participation import tiny_study

pytestmark = pytest.mark.django_db


def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def csrf_token_of(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    return page.cookies["csrftoken"].value if "csrftoken" in page.cookies else client.cookies["csrftoken"].value


def test_the_login_form_needs_the_csrf_token(researcher):
    client = csrf_client()
    url = reverse("login")
    refused = client.post(url, {"username": researcher.username, "password": "pw-for-tests"})
    assert refused.status_code == 403 and "_auth_user_id" not in client.session
    token = csrf_token_of(client, url)
    answer = client.post(url, {"username": researcher.username, "password": "pw-for-tests", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and client.session["_auth_user_id"] == str(researcher.pk)


def test_dashboard_forms_need_the_csrf_token(researcher, make_study):
    study = make_study()
    client = csrf_client()
    client.force_login(researcher)
    url = reverse("dashboard-study-launch", args=[study.slug])
    assert client.post(url).status_code == 403
    assert Study.objects.get(pk=study.pk).status == Study.Status.DRAFT
    token = csrf_token_of(client, reverse("dashboard-study", args=[study.slug]))
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert Study.objects.get(pk=study.pk).status == Study.Status.LIVE


def test_the_consent_form_needs_the_csrf_token(researcher):
    study = tiny_study(researcher)
    client = csrf_client()
    url = reverse("study-entry", args=[study.slug])
    assert client.post(url, {"consent": "yes"}).status_code == 403
    assert not Participant.objects.exists()
    token = csrf_token_of(client, url)
    assert client.post(url, {"consent": "yes", "csrfmiddlewaretoken": token}).status_code == 302
    assert Participant.objects.count() == 1


def test_session_api_writes_need_the_csrf_header(researcher):
    client = csrf_client()
    client.force_login(researcher)
    url = reverse("api-studies")
    refused = client.post(url, {"title": "by session"}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not Study.objects.exists()
    assert client.get(url).status_code == 200  # reads need no token
    token = csrf_token_of(client, reverse("dashboard"))
    answer = client.post(url, {"title": "by session"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 201, answer.content


def test_token_api_writes_and_participant_writes_need_no_csrf(researcher):
    client = csrf_client()
    key = Token.objects.create(user=researcher).key
    answer = client.post(reverse("api-studies"), {"title": "by token"}, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Token {key}")
    assert answer.status_code == 201, answer.content
    study = tiny_study(researcher)
    started = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, content_type="application/json")
    assert started.status_code == 201
    token = started.json()["token"]
    assert client.get(reverse("participant-trial-next", args=[token])).status_code == 200
