"""Every URL the project serves, walked from the resolver and classified: public, participant (the
token in the path is the credential), researcher (login or API token, and the object must be yours)
or admin (staff). A route missing from CLASSIFIED fails the test: a new route has to be placed.

For each route and each method its view answers:
* anonymous -> 401/403 (API) or 302 to the login page (pages, admin), for everything not public;
* a forged participant token -> 404;
* a second researcher on the first one's objects -> 404/403, and nothing of theirs changes;
* the owner gets through (so the test's URLs are real ones, not 404s that prove nothing).
"""
from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Participant, Study
from annotations.services import participation
from explain.models import ExplanationJob

pytestmark = pytest.mark.django_db

PUBLIC, PARTICIPANT, RESEARCHER, ADMIN = "public", "participant", "researcher", "admin"

CLASSIFIED = {
    "": PUBLIC,  # redirect to the dashboard (which then asks for a login)
    "healthz": PUBLIC,
    "favicon.ico": PUBLIC,  # a redirect to the static icon
    "admin/login/": PUBLIC,  # rate-limited (studyserver/throttling.py)
    "admin/logout/": PUBLIC,
    "accounts/login/": PUBLIC,
    "accounts/logout/": PUBLIC,
    "api/schema/": PUBLIC,
    "api/docs/": PUBLIC,
    "api/v1/auth/token/": PUBLIC,
    "s/<slug:slug>/": PUBLIC,
    "api/v1/studies/<slug:slug>/participants/": PUBLIC,  # consent: creates a participant of a live study
    "p/<str:token>/": PARTICIPANT,
    "p/<str:token>/done/": PARTICIPANT,
    "api/v1/participant/<str:token>/next/": PARTICIPANT,
    "api/v1/participant/<str:token>/trials/<int:trial_id>/response/": PARTICIPANT,
    "api/v1/participant/<str:token>/trials/<int:trial_id>/image/": PARTICIPANT,
    "api/v1/participant/<str:token>/calibration/": PARTICIPANT,
    "api/v1/participant/<str:token>/practice/": PARTICIPANT,
    "api/v1/participant/<str:token>/practice/image/": PARTICIPANT,
    "api/v1/auth/token/revoke/": RESEARCHER,
    "api/v1/explain/options/": RESEARCHER,
    "api/v1/corruptions/": RESEARCHER,
    "api/v1/studies/": RESEARCHER,
    "api/v1/studies/<slug:slug>/": RESEARCHER,
    "api/v1/studies/<slug:slug>/launch/": RESEARCHER,
    "api/v1/studies/<slug:slug>/pause/": RESEARCHER,
    "api/v1/studies/<slug:slug>/resume/": RESEARCHER,
    "api/v1/studies/<slug:slug>/close/": RESEARCHER,
    "api/v1/studies/<slug:slug>/archive/": RESEARCHER,  # owner only
    "api/v1/studies/<slug:slug>/restore/": RESEARCHER,  # owner only
    "api/v1/studies/<slug:slug>/clone/": RESEARCHER,
    "api/v1/studies/<slug:slug>/progress/": RESEARCHER,
    "api/v1/studies/<slug:slug>/scores/": RESEARCHER,
    "api/v1/studies/<slug:slug>/shares/": RESEARCHER,
    "api/v1/studies/<slug:slug>/shares/<str:username>/": RESEARCHER,
    "api/v1/studies/<slug:slug>/stimuli/": RESEARCHER,
    "api/v1/studies/<slug:slug>/stimuli/zip/": RESEARCHER,
    "api/v1/studies/<slug:slug>/variants/": RESEARCHER,
    "api/v1/studies/<slug:slug>/stimuli/<int:stimulus_id>/": RESEARCHER,
    "api/v1/studies/<slug:slug>/stimuli/<int:stimulus_id>/image/": RESEARCHER,
    "api/v1/studies/<slug:slug>/stimuli/<int:stimulus_id>/rendition/": RESEARCHER,
    "dashboard/": RESEARCHER,
    "dashboard/studies/<slug:slug>/": RESEARCHER,
    "dashboard/studies/<slug:slug>/launch/": RESEARCHER,
    "dashboard/studies/<slug:slug>/report/": RESEARCHER,
    "dashboard/studies/<slug:slug>/report/figures/<str:name>.<str:fmt>": RESEARCHER,
    "dashboard/studies/<slug:slug>/report/tables/<str:name>.csv": RESEARCHER,
    "dashboard/studies/<slug:slug>/report/reliability/": RESEARCHER,
    "dashboard/studies/<slug:slug>/report/maps/": RESEARCHER,
    "dashboard/studies/<slug:slug>/report/recipe/": RESEARCHER,
    "dashboard/studies/<slug:slug>/export/human-maps.zip": RESEARCHER,
    "dashboard/studies/<slug:slug>/export/responses.<str:fmt>": RESEARCHER,
    "dashboard/stimuli/<int:stimulus_id>/image.png": RESEARCHER,
    "dashboard/stimuli/<int:stimulus_id>/human-<str:task_kind>-top.png": RESEARCHER,
    "dashboard/stimuli/<int:stimulus_id>/human-<str:task_kind>.png": RESEARCHER,
    "dashboard/stimuli/<int:stimulus_id>/model-<int:job_id>.png": RESEARCHER,
    "dashboard/stimuli/<int:stimulus_id>/model-<int:job_id>-top.png": RESEARCHER,
    "api/v1/studies/<slug:slug>/results/": RESEARCHER,
    "api/v1/studies/<slug:slug>/results/tables/<str:name>.csv": RESEARCHER,
    "api/v1/studies/<slug:slug>/results/figures/<str:name>.<str:fmt>": RESEARCHER,
    "api/v1/studies/<slug:slug>/exports/human-maps.zip": RESEARCHER,
    "api/v1/studies/<slug:slug>/exports/responses.<str:fmt>": RESEARCHER,
    "dashboard/studies/": RESEARCHER,
    "dashboard/new-study/": RESEARCHER,
    "dashboard/studies/<slug:slug>/settings/": RESEARCHER,
    "dashboard/studies/<slug:slug>/stimuli/upload/": RESEARCHER,
    "dashboard/studies/<slug:slug>/stimuli/<int:stimulus_id>/remove/": RESEARCHER,
    "dashboard/studies/<slug:slug>/variants/": RESEARCHER,
    "dashboard/studies/<slug:slug>/pause/": RESEARCHER,
    "dashboard/studies/<slug:slug>/resume/": RESEARCHER,
    "dashboard/studies/<slug:slug>/close/": RESEARCHER,
    "dashboard/studies/<slug:slug>/archive/": RESEARCHER,  # owner only
    "dashboard/studies/<slug:slug>/restore/": RESEARCHER,  # owner only
    "dashboard/studies/<slug:slug>/delete/": RESEARCHER,  # owner only
    "dashboard/studies/<slug:slug>/clone/": RESEARCHER,
    "dashboard/studies/<slug:slug>/qr.svg": RESEARCHER,
    # Preview: the researcher takes their own study as a participant, in their session; nothing stored.
    "dashboard/studies/<slug:slug>/preview/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/task/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/next/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/trials/<int:position>/response/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/trials/<int:position>/image/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/practice/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/practice/image/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/calibration/": RESEARCHER,
    "dashboard/studies/<slug:slug>/preview/done/": RESEARCHER,
}
ADMIN_PREFIX = "admin/"  # Django's admin: every route behind its staff check (admin_view)
# Researcher routes that hold no object of anyone's: a second researcher gets their own (empty) view.
NO_OBJECT = {"api/v1/auth/token/revoke/", "api/v1/explain/options/", "api/v1/corruptions/", "api/v1/studies/", "dashboard/",
             "dashboard/studies/", "dashboard/new-study/"}
# Owner answers that are not a 2xx/3xx, by design: no finished model map exists in this study yet.
OWNER_EXPECTED = {"dashboard/stimuli/<int:stimulus_id>/model-<int:job_id>.png": 404,
                  "dashboard/stimuli/<int:stimulus_id>/model-<int:job_id>-top.png": 404,
                  # the preview's own endpoints answer once a preview is started in this session
                  **{f"dashboard/studies/<slug:slug>/preview/{rest}": 404 for rest in (
                      "next/", "trials/<int:position>/image/", "practice/", "practice/image/", "calibration/", "done/")}}
# Path values that differ from the shared ones in `world`.
ROUTE_VALUES = {"dashboard/studies/<slug:slug>/report/figures/<str:name>.<str:fmt>": {"name": "bars-pcc", "fmt": "png"},
                "api/v1/studies/<slug:slug>/results/figures/<str:name>.<str:fmt>": {"name": "bars-pcc", "fmt": "png"}}
METHODS = ("get", "post", "put", "patch", "delete")


def routes() -> list[tuple[str, object]]:
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                found.append((prefix + str(pattern.pattern), pattern.callback))

    walk(get_resolver().url_patterns, "")
    return found


def classify(route: str) -> str | None:
    if route in CLASSIFIED:
        return CLASSIFIED[route]
    return ADMIN if route.startswith(ADMIN_PREFIX) else None


def methods_of(callback) -> list[str]:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        return [m for m in METHODS if hasattr(view_class, m)]
    return ["get", "post"]


def fill(route: str, values: dict) -> str:
    """A concrete path: <conv:name> and (?P<name>...) replaced by values[name]."""
    values = {**values, **ROUTE_VALUES.get(route, {})}
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
    return "/" + path.replace("^", "").replace("$", "")


@pytest.fixture
def world(make_study, researcher, django_user_model):
    study = make_study(launch=True)
    stimulus = study.stimuli.order_by("id").first()
    participant, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=participant)
    job = ExplanationJob.objects.filter(image_sha256=stimulus.sha256).first()
    other = django_user_model.objects.create_user(username=f"other-{uuid.uuid4().hex[:6]}", password="pw-other")
    values = {
        "slug": study.slug, "stimulus_id": stimulus.pk, "token": participant.token, "trial_id": trial.pk,
        "username": other.username, "task_kind": "paint", "job_id": job.pk if job else 1, "name": "summary",
        "fmt": "csv", "position": 0, "object_id": "1", "app_label": "annotations", "url": "nowhere/", "content_type_id": 1, "id": 1,
    }
    return {"study": study, "owner": researcher, "other": other, "values": values, "participant": participant}


def as_api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def as_session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def call(client, method, path):
    return getattr(client, method)(path, {}, format="json") if method != "get" else client.get(path)


def test_paths_are_filled_in_whole():
    assert fill("admin/^(?P<app_label>auth|annotations)/$", {"app_label": "annotations"}) == "/admin/annotations/"
    assert fill("p/<str:token>/trials/<int:trial_id>/", {"token": "t", "trial_id": 3}) == "/p/t/trials/3/"


def test_every_route_is_classified():
    unclassified = [route for route, _ in routes() if classify(route) is None]
    assert not unclassified, f"routes with no security class (add them to CLASSIFIED): {unclassified}"
    stale = set(CLASSIFIED) - {route for route, _ in routes()}
    assert not stale, f"CLASSIFIED names routes that no longer exist: {stale}"


def test_anonymous_callers_get_no_further_than_the_login(world):
    anonymous = APIClient()
    checked = 0
    for route, callback in routes():
        kind = classify(route)
        if kind in (PUBLIC, PARTICIPANT):
            continue
        path = fill(route, world["values"])
        for method in methods_of(callback):
            answer = call(anonymous, method, path)
            checked += 1
            if route.startswith("api/"):
                assert answer.status_code in (401, 403), (method, path, answer.status_code)
                assert answer.json()["detail"], (method, path)
            else:
                assert answer.status_code == 302, (method, path, answer.status_code)
                login = "/admin/login/" if kind == ADMIN else "/accounts/login/"
                location = answer["Location"]
                assert location.startswith(login) or (kind == ADMIN and location == "/admin/"), (method, path, location)
    assert checked > 100
    assert Study.objects.get(pk=world["study"].pk).status == Study.Status.LIVE


def test_a_researcher_who_is_not_staff_is_kept_out_of_the_admin(world):
    client = as_session(world["other"])
    for route, _callback in routes():
        if classify(route) != ADMIN:
            continue
        answer = client.get(fill(route, world["values"]))
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/"), (route, answer.status_code)


def test_a_forged_participant_token_gets_404_everywhere(world):
    values = {**world["values"], "token": world["participant"].token[:-2] + "zz"}
    client = APIClient()
    for route, callback in routes():
        if classify(route) != PARTICIPANT:
            continue
        for method in methods_of(callback):
            answer = call(client, method, fill(route, values))
            assert answer.status_code == 404, (method, route, answer.status_code)


def test_a_second_researcher_gets_nothing_of_the_firsts(world):
    study, other = world["study"], world["other"]
    before = (study.status, study.title, study.stimuli.count(), study.shares.count(), Participant.objects.count())
    checked = 0
    for route, callback in routes():
        if classify(route) != RESEARCHER:
            continue
        path = fill(route, world["values"])
        client = as_api(other) if route.startswith("api/") else as_session(other)
        for method in methods_of(callback):
            answer = call(client, method, path)
            if route in NO_OBJECT:
                assert answer.status_code < 500, (method, path, answer.status_code)
                assert study.slug.encode() not in answer.content, (method, path)
                continue
            checked += 1
            # 405: a POST-only page asked with GET (refused before anything is looked up)
            assert answer.status_code in (403, 404, 405), (method, path, answer.status_code, answer.content[:200])
    assert checked >= 35
    study.refresh_from_db()
    after = (study.status, study.title, study.stimuli.count(), study.shares.count(), Participant.objects.count())
    assert after == before


def test_the_owner_reaches_every_read(world):
    owner = world["owner"]
    for route, callback in routes():
        if classify(route) != RESEARCHER or "get" not in methods_of(callback):
            continue
        client = as_api(owner) if route.startswith("api/") else as_session(owner)
        answer = client.get(fill(route, world["values"]))
        if answer.status_code == 405:  # a POST-only page
            continue
        expected = OWNER_EXPECTED.get(route)
        if expected:
            assert answer.status_code == expected, (route, answer.status_code)
        else:
            assert answer.status_code < 400, (route, answer.status_code, answer.content[:300])
