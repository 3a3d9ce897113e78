"""The researcher REST API, endpoint by endpoint, through HTTP: auth, studies, lifecycle, stimuli,
zip uploads, variants, progress, scores, sharing and permissions."""
import datetime
import io
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.corruptions import corrupt_png
from annotations.models import Participant, Stimulus, Study
from annotations.services import participation
from explain.models import ExplanationJob
from studyserver.researcher.demo import demo_photo_bytes
from studyserver.researcher.services import studies
from tests.annotations.zipfiles import csv_bytes, make_zip, photo_zip, pixel_bomb_png, png
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def api(researcher):
    return client_for(researcher)


@pytest.fixture
def stranger(django_user_model):
    return client_for(django_user_model.objects.create_user(username="stranger"))


def url(name, *args):
    return reverse(name, args=args)


def created(answer, code=201):
    assert answer.status_code == code, answer.content
    return answer.json()


def problem(answer, code):
    assert answer.status_code == code, answer.content
    body = answer.json()
    assert set(body) == {"error", "detail", "fields"} and body["detail"]
    return body


def media_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def new_study(api, **fields) -> dict:
    return created(api.post(url("api-studies"), {"title": "My study", **fields}, format="json"))


def upload(api, slug, data=None, filename="cat.png", **fields):
    data = data if data is not None else demo_photo_bytes("chelsea.png")
    return api.post(url("api-stimuli", slug), {"image": _named(data, filename), **fields}, format="multipart")


def _named(data: bytes, name: str):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def upload_zip(api, slug, data: bytes, labels: bytes | None = None):
    body = {"archive": _named(data, "stimuli.zip")}
    if labels is not None:
        body["labels"] = _named(labels, "labels.csv")
    return api.post(url("api-stimuli-zip", slug), body, format="multipart")


# --- authentication ------------------------------------------------------------------------------


def test_a_token_from_username_and_password_works_and_can_be_revoked(researcher):
    anonymous = APIClient()
    answer = anonymous.post(url("api-token"), {"username": researcher.username, "password": "pw-for-tests"}, format="json")
    token = created(answer, 200)["token"]
    assert anonymous.post(url("api-token"), {"username": researcher.username, "password": "pw-for-tests"}).json()["token"] == token
    problem(anonymous.post(url("api-token"), {"username": researcher.username, "password": "wrong"}), 400)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(url("api-studies")).status_code == 200
    assert client.post(url("api-token-revoke")).status_code == 204
    assert client.get(url("api-studies")).status_code == 401


def test_a_token_expires_after_its_lifetime_and_asking_again_gives_a_new_one(researcher, settings):
    settings.API_TOKEN_TTL_DAYS = 30
    anonymous, login = APIClient(), {"username": researcher.username, "password": "pw-for-tests"}
    first = created(anonymous.post(url("api-token"), login, format="json"), 200)
    made = Token.objects.get(key=first["token"]).created
    assert abs((datetime.datetime.fromisoformat(first["expires"]) - made) - datetime.timedelta(days=30)).total_seconds() < 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first['token']}")
    Token.objects.filter(key=first["token"]).update(created=timezone.now() - datetime.timedelta(days=29, hours=23))
    assert client.get(url("api-studies")).status_code == 200
    Token.objects.filter(key=first["token"]).update(created=timezone.now() - datetime.timedelta(days=30, seconds=1))
    body = problem(client.get(url("api-studies")), 401)
    assert "expired" in body["detail"] and "/api/v1/auth/token/" in body["detail"]
    second = created(anonymous.post(url("api-token"), login, format="json"), 200)
    assert second["token"] != first["token"] and not Token.objects.filter(key=first["token"]).exists()
    assert problem(client.get(url("api-studies")), 401)
    client.credentials(HTTP_AUTHORIZATION=f"Token {second['token']}")
    assert client.get(url("api-studies")).status_code == 200
    assert created(anonymous.post(url("api-token"), login, format="json"), 200)["token"] == second["token"]


def test_with_a_lifetime_of_0_tokens_never_expire(researcher, settings):
    settings.API_TOKEN_TTL_DAYS = 0
    anonymous, login = APIClient(), {"username": researcher.username, "password": "pw-for-tests"}
    answer = created(anonymous.post(url("api-token"), login, format="json"), 200)
    assert answer["expires"] is None
    Token.objects.filter(key=answer["token"]).update(created=timezone.now() - datetime.timedelta(days=3650))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {answer['token']}")
    assert client.get(url("api-studies")).status_code == 200
    assert created(anonymous.post(url("api-token"), login, format="json"), 200)["token"] == answer["token"]


def test_everything_needs_a_login(researcher, make_study):
    study = make_study()
    anonymous = APIClient()
    for name, args in [("api-studies", ()), ("api-study", (study.slug,)), ("api-stimuli", (study.slug,)),
                       ("api-study-progress", (study.slug,)), ("api-study-scores", (study.slug,)),
                       ("api-corruptions", ()), ("api-explain-options", ())]:
        answer = anonymous.get(url(name, *args))
        assert answer.status_code == 401 and answer["WWW-Authenticate"] == "Token", name
    problem(anonymous.post(url("api-study-launch", study.slug)), 401)
    assert Study.objects.get(pk=study.pk).status == "draft"


def test_session_login_works_and_unsafe_calls_need_the_csrf_token(researcher):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(researcher)
    assert client.get(url("api-studies")).status_code == 200
    body = problem(client.post(url("api-studies"), {"title": "x"}, format="json"), 403)
    assert "CSRF" in body["detail"]


# --- studies -------------------------------------------------------------------------------------


def test_create_read_list_and_edit_a_draft(api, researcher):
    study = new_study(api, task_kinds=["paint"], participants_per_stimulus=4, redirect_url="https://app.prolific.com/x",
                      explain_config=[{"method": "gradcam"}], task_params={"paint": {"brush_radii": [5, 12, 25]}})
    assert study["slug"] == "my-study" and study["status"] == "draft" and study["owner"] == researcher.username
    assert study["access"] == "owner" and study["explain_config"] == [{"model": "efficientnet_lite0", "method": "gradcam", "params": {}}]
    assert study["participant_url"].endswith("/s/my-study/") and "consent_text" in study["editable_fields"]
    assert new_study(api)["slug"] == "my-study-2"
    assert [s["slug"] for s in api.get(url("api-studies")).json()] == ["my-study-2", "my-study"]
    edited = created(api.patch(url("api-study", "my-study"), {"consent_text": "Agreed?", "stimuli_per_participant": 3}, format="json"), 200)
    assert (edited["consent_text"], edited["stimuli_per_participant"]) == ("Agreed?", 3)
    assert api.get(url("api-study", "my-study")).json()["consent_text"] == "Agreed?"


@pytest.mark.parametrize(
    "body,field,text",
    [
        ({"task_kinds": ["draw"]}, "task_kinds", "not a valid choice"),
        ({"task_kinds": []}, "task_kinds", ""),
        ({"participants_per_stimulus": 0}, "participants_per_stimulus", ""),
        ({"redirect_url": "not a url"}, "redirect_url", ""),
        ({"explain_config": [{"method": "xrai-nope"}]}, "explain_config", "valid methods: fem, gradcam, gradient"),
        ({"explain_config": [{"model": "resnet9000", "method": "gradcam"}]}, "explain_config", "valid models: efficientnet_lite0"),
        ({"explain_config": [{"method": "gradcam", "params": {"alpha": 1}}]}, "explain_config", "unknown parameter(s) alpha"),
        ({"task_params": {"bubble": {"radius": 3}}}, "task_params", "bubble.radius is not a parameter"),
        ({"task_params": {"units": "inch"}}, "task_params", "units"),
        ({"slug": "no spaces allowed"}, "slug", ""),
    ],
)
def test_bad_settings_get_a_400_naming_the_field(api, body, field, text):
    answer = problem(api.post(url("api-studies"), {"title": "t", **body}, format="json"), 400)
    assert field in answer["fields"] and text in answer["detail"] + str(answer["fields"])
    assert Study.objects.count() == 0


def test_a_taken_slug_is_409(api):
    new_study(api, slug="taken")
    body = problem(api.post(url("api-studies"), {"title": "t", "slug": "taken"}, format="json"), 409)
    assert "slug" in body["fields"]


def test_frozen_settings_of_a_live_study_get_409_naming_them(api, researcher, make_study):
    study = make_study(launch=True)
    answer = api.patch(url("api-study", study.slug), {"consent_text": "new", "task_kinds": ["bubble"], "title": "x"}, format="json")
    body = problem(answer, 409)
    assert body["error"] == "frozen" and set(body["fields"]) == {"consent_text", "task_kinds"}
    assert "consent_text, task_kinds" in body["detail"]
    assert Study.objects.get(pk=study.pk).title == "Test study"
    fine = created(api.patch(url("api-study", study.slug), {"title": "x", "participants_per_stimulus": 12}, format="json"), 200)
    assert (fine["title"], fine["participants_per_stimulus"]) == ("x", 12)
    assert fine["editable_fields"] == ["title", "participants_per_stimulus", "completion_code", "redirect_url"]


def test_lifecycle_through_the_api(api, make_study):
    study = make_study()
    slug = study.slug
    launched = created(api.post(url("api-study-launch", slug)), 200)
    assert launched["status"] == "live" and launched["completion_code"]
    assert ExplanationJob.objects.filter(image_sha256__in=study.stimuli.values("sha256")).count() == 2
    problem(api.post(url("api-study-launch", slug)), 409)
    assert created(api.post(url("api-study-pause", slug)), 200)["status"] == "paused"
    start = APIClient().post(url("participant-start", slug), {"consent": True}, format="json")
    assert start.status_code == 409 and start.json()["error"] == "study_paused"  # no new participants while paused
    assert "resume" in problem(api.post(url("api-study-launch", slug)), 409)["detail"]
    assert created(api.post(url("api-study-resume", slug)), 200)["status"] == "live"
    assert created(api.post(url("api-study-close", slug)), 200)["status"] == "closed"
    problem(api.post(url("api-study-resume", slug)), 409)
    problem(api.post(url("api-study-pause", slug)), 409)


def test_launch_without_stimuli_is_400(api):
    slug = new_study(api)["slug"]
    assert "no stimuli" in problem(api.post(url("api-study-launch", slug)), 400)["detail"]


def test_clone_makes_a_draft_copy_with_stimuli(api, make_study):
    study = make_study(launch=True)
    clone = created(api.post(url("api-study-clone", study.slug), {"slug": "again"}, format="json"))
    assert (clone["slug"], clone["status"], clone["n_stimuli"], clone["completion_code"]) == ("again", "draft", 2, "")
    problem(api.post(url("api-study-clone", study.slug), {"slug": "again"}, format="json"), 409)


# --- delete, archive, restore --------------------------------------------------------------------


def test_delete_a_draft_confirmed_by_its_slug(api, make_study, researcher, settings, django_capture_on_commit_callbacks):
    study = make_study()
    slug = study.slug
    assert "confirm" in problem(api.delete(url("api-study", slug)), 400)["fields"]
    assert "confirm" in problem(api.delete(url("api-study", slug), {"confirm": "nope"}, format="json"), 400)["fields"]
    assert Study.objects.filter(slug=slug).exists() and len(media_files(settings)) == 4
    with django_capture_on_commit_callbacks(execute=True):
        answer = created(api.delete(url("api-study", slug), {"confirm": slug}, format="json"), 200)
    assert answer == {"deleted": slug, "counts": {"stimuli": 2, "variants": 0, "files": 4, "explanation_jobs_kept": 0,
                                                  "explanation_jobs_deleted": 0, "rows": 3}}
    assert not Study.objects.filter(slug=slug).exists() and media_files(settings) == []
    problem(api.get(url("api-study", slug)), 404)
    # The query parameter works too (for clients that send no body with DELETE).
    other = make_study()
    created(api.delete(url("api-study", other.slug) + f"?confirm={other.slug}"), 200)
    assert not Study.objects.filter(pk=other.pk).exists()


def test_delete_a_launched_study_is_409_and_names_archiving(api, make_study):
    study = make_study(launch=True)
    body = problem(api.delete(url("api-study", study.slug), {"confirm": study.slug}, format="json"), 409)
    assert "only a draft that was never launched can be deleted" in body["detail"] and "archive" in body["detail"]
    created(api.post(url("api-study-close", study.slug)), 200)
    assert "archive it instead" in problem(api.delete(url("api-study", study.slug), {"confirm": study.slug}, format="json"), 409)["detail"]
    assert Study.objects.filter(pk=study.pk).exists()


def test_archive_hides_a_closed_study_from_the_list_and_restore_brings_it_back(api, make_study):
    study = studies.study_close(study=make_study(launch=True))
    draft = make_study()
    assert "only a closed study" in problem(api.post(url("api-study-archive", draft.slug)), 409)["detail"]
    archived = created(api.post(url("api-study-archive", study.slug)), 200)
    assert archived["status"] == "closed" and archived["archived_at"]
    assert [s["slug"] for s in api.get(url("api-studies")).json()] == [draft.slug]
    assert [s["slug"] for s in api.get(url("api-studies") + "?archived=1").json()] == [study.slug]
    assert [s["slug"] for s in api.get(url("api-studies") + "?archived=false").json()] == [draft.slug]
    assert "archived" in problem(api.get(url("api-studies") + "?archived=maybe"), 400)["fields"]
    assert api.get(url("api-study", study.slug)).json()["archived_at"] == archived["archived_at"]  # still reachable
    assert api.get(url("api-study-progress", study.slug)).status_code == 200
    problem(api.post(url("api-study-archive", study.slug)), 409)
    restored = created(api.post(url("api-study-restore", study.slug)), 200)
    assert restored["archived_at"] is None and restored["status"] == "closed"
    assert {s["slug"] for s in api.get(url("api-studies")).json()} == {study.slug, draft.slug}
    problem(api.post(url("api-study-restore", study.slug)), 409)


def test_only_the_owner_deletes_archives_or_restores(api, make_study, django_user_model):
    draft = make_study()
    closed = studies.study_close(study=make_study(launch=True))
    colleague = django_user_model.objects.create_user(username="colleague")
    as_colleague = client_for(colleague)
    for study in (draft, closed):
        studies.study_share_set(study=study, username="colleague", role="edit")
    body = problem(as_colleague.delete(url("api-study", draft.slug), {"confirm": draft.slug}, format="json"), 403)
    assert "only its owner" in body["detail"]
    problem(as_colleague.post(url("api-study-archive", closed.slug)), 403)
    api.post(url("api-study-archive", closed.slug))
    problem(as_colleague.post(url("api-study-restore", closed.slug)), 403)
    assert Study.objects.filter(pk=draft.pk).exists() and Study.objects.get(pk=closed.pk).archived_at is not None
    # A collaborator's lists hide the archived study too, and show it with ?archived=1.
    assert [s["slug"] for s in as_colleague.get(url("api-studies")).json()] == [draft.slug]
    assert [s["slug"] for s in as_colleague.get(url("api-studies") + "?archived=1").json()] == [closed.slug]


# --- stimuli -------------------------------------------------------------------------------------


def test_upload_list_inspect_download_and_remove_a_stimulus(api, settings):
    slug = new_study(api)["slug"]
    cat = created(upload(api, slug, class_name="tabby cat", name="the cat"))
    assert (cat["class_index"], cat["class_name"], cat["width"], cat["height"]) == (281, "tabby, tabby cat", 451, 300)
    assert (cat["name"], cat["role"], cat["condition"], cat["source"]) == ("the cat", "main", "original", None)
    assert [s["id"] for s in api.get(url("api-stimuli", slug)).json()] == [cat["id"]]
    assert api.get(url("api-stimulus", slug, cat["id"])).json()["sha256"] == cat["sha256"]
    original = api.get(cat["image_url"])
    assert original.status_code == 200 and original["Content-Type"] == "image/png"
    assert b"".join(original.streaming_content) == demo_photo_bytes("chelsea.png")
    rendition = api.get(cat["rendition_url"])
    assert rendition["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(b"".join(rendition.streaming_content))).size == (451, 300)
    jpeg = created(upload(api, slug, demo_photo_bytes("rocket.jpg"), "rocket.jpg", class_index=657))
    assert api.get(jpeg["image_url"])["Content-Type"] == "image/jpeg"
    assert created(api.delete(url("api-stimulus", slug, cat["id"])), 200) == {"removed": [cat["id"]]}
    problem(api.get(url("api-stimulus", slug, cat["id"])), 404)


def test_bad_single_uploads_are_named_and_store_nothing(api, settings):
    slug = new_study(api)["slug"]
    body = problem(upload(api, slug, b"%PDF-1.4 a paper", "paper.pdf"), 400)
    assert "paper.pdf" in body["detail"] and "not a readable image" in body["detail"]
    body = problem(upload(api, slug, class_name="rocket ship"), 400)
    assert "unknown ImageNet class name 'rocket ship'" in body["detail"]
    body = problem(upload(api, slug, pixel_bomb_png(20000), "bomb.png"), 400)  # Pillow will not even open it
    assert "bomb.png: the image is 400000000 pixels (a decompression bomb); the limit is 16777216 pixels" in body["detail"]
    settings.STIMULUS_MAX_PIXELS = 100_000
    body = problem(upload(api, slug), 400)
    assert "451x300 = 135300 pixels; the limit is 100000 pixels" in body["detail"]
    settings.STIMULUS_MAX_BYTES = 1000
    assert "limit is 1000 bytes" in problem(upload(api, slug), 413)["detail"]
    settings.STIMULUS_MAX_BYTES = 10**7
    body = problem(upload(api, slug, png(100, 80), "c.png", role="catch"), 400)
    assert "known_region" in body["fields"]
    assert Stimulus.objects.count() == 0 and media_files(settings) == []


def test_duplicates_and_uploads_to_a_live_study_are_409(api, make_study):
    study = make_study()
    assert "already a stimulus" in problem(upload(api, study.slug), 409)["detail"]
    studies.study_launch(study=study)
    assert "only while it is a draft" in problem(upload(api, study.slug, png(), "new.png"), 409)["detail"]
    cat = study.stimuli.first()
    problem(api.delete(url("api-stimulus", study.slug, cat.pk)), 409)
    assert study.stimuli.count() == 2


def test_a_catch_stimulus_with_its_region(api):
    slug = new_study(api)["slug"]
    made = created(upload(api, slug, png(100, 80), "catch.png", role="catch", known_region="10, 20, 60, 70"))
    assert made["role"] == "catch" and made["known_region"] == {"boxes": [[10.0, 20.0, 60.0, 70.0]], "polygons": []}
    body = problem(upload(api, slug, png(100, 80, seed=2), "c2.png", role="catch", known_region="10 20 160 70"), 400)
    assert "x1 = 160.0 is outside the image (0..100)" in body["detail"]
    triangle = '{"polygons": [[[0, 0], [90, 0], [0, 70]]]}'
    made = created(upload(api, slug, png(100, 80, seed=3), "c3.png", role="catch", known_region=triangle))
    assert made["known_region"]["polygons"] == [[[0.0, 0.0], [90.0, 0.0], [0.0, 70.0]]]


# --- zip uploads ---------------------------------------------------------------------------------


def test_a_zip_with_labels_creates_all_stimuli(api):
    slug = new_study(api)["slug"]
    archive = photo_zip(extra_rows=["images/grey.png,,grey,images/chelsea.png"], extra_members={"images/grey.png": png(90, 60)})
    made = created(upload_zip(api, slug, archive))
    assert [(s["name"], s["class_index"], s["condition"]) for s in made] == [
        ("chelsea.png", 285, "original"), ("coffee.png", 967, "original"), ("grey.png", 285, "grey")]
    assert made[2]["source"] == made[0]["id"]


def test_labels_may_come_as_a_separate_file(api):
    slug = new_study(api)["slug"]
    made = created(upload_zip(api, slug, make_zip({"a.png": png()}), labels=csv_bytes("a.png,goldfish,,")))
    assert made[0]["class_index"] == 1


BAD_ZIPS = {
    "non-image listed": (lambda: photo_zip(extra_rows=["notes.txt,1,,"], extra_members={"notes.txt": b"hello"}),
                         "notes.txt: the file is not a readable image"),
    "non-image unlisted": (lambda: photo_zip(extra_members={"notes.txt": b"hello"}), "not listed in the labels CSV: notes.txt"),
    "path traversal": (lambda: photo_zip(extra_rows=["../evil.png,1,,"], extra_members={"../evil.png": png()}),
                       "'../evil.png' has a '..' part (path traversal)"),
    "absolute path": (lambda: photo_zip(extra_rows=["/tmp/evil.png,1,,"], extra_members={"/tmp/evil.png": png()}),
                      "'/tmp/evil.png' has an absolute path"),
    "drive letter": (lambda: photo_zip(extra_rows=["C:/evil.png,1,,"], extra_members={"C:/evil.png": png()}),
                     "'C:/evil.png' has a drive letter"),
    "symlink": (lambda: make_zip({"a.png": png(), "labels.csv": csv_bytes("a.png,1,,")}, symlinks={"b.png": "../../etc/passwd"}),
                "'b.png' is a symbolic link"),
    "compression bomb": (lambda: photo_zip(extra_rows=["bomb.bmp,1,,"], extra_members={"bomb.bmp": b"\0" * (20 * 1024 * 1024)}),
                         "a decompression bomb"),
    "pixel bomb": (lambda: photo_zip(extra_rows=["huge.png,1,,"], extra_members={"huge.png": pixel_bomb_png(5000)}),
                   "huge.png: the image is 5000x5000 = 25000000 pixels; the limit is 16777216 pixels"),
    "unknown class": (lambda: photo_zip(extra_rows=["x.png,rocket ship,,"], extra_members={"x.png": png()}),
                      "labels row 4 (x.png): unknown ImageNet class name 'rocket ship'"),
    "missing file": (lambda: photo_zip(extra_rows=["images/missing.png,1,,"]), "labels row 4 (images/missing.png): the file is not in the zip"),
    "no labels": (lambda: make_zip({"a.png": png()}), "exactly one labels CSV"),
    "not a zip": (lambda: b"this is not a zip file at all", "not a readable zip archive"),
    "duplicate image": (lambda: photo_zip(extra_rows=["again.png,285,,"], extra_members={"again.png": demo_photo_bytes("chelsea.png")}),
                        "again.png: the same image as images/chelsea.png"),
    "unknown source": (lambda: photo_zip(extra_rows=["v.png,,grey,nowhere.png"], extra_members={"v.png": png()}),
                       "source 'nowhere.png': no such file in the zip or stimulus in the study"),
}


@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_bad_zips_get_a_400_naming_the_problem_and_nothing_is_created(api, settings, case):
    build, text = BAD_ZIPS[case]
    slug = new_study(api)["slug"]
    body = problem(upload_zip(api, slug, build()), 400)
    assert text in body["detail"], body
    assert any(text in p for p in sum(body["fields"].values(), [])), body["fields"]
    assert Stimulus.objects.count() == 0 and media_files(settings) == []


def test_zip_size_limits_are_413_and_live_studies_409(api, make_study, settings):
    slug = new_study(api)["slug"]
    settings.STIMULUS_ZIP_MAX_BYTES = 10_000
    assert "the limit is 10000 bytes" in problem(upload_zip(api, slug, photo_zip()), 413)["detail"]
    study = make_study(photos=("rocket.jpg",), labels=(657,), launch=True)
    settings.STIMULUS_ZIP_MAX_BYTES = 10**9
    problem(upload_zip(api, study.slug, photo_zip()), 409)
    assert study.stimuli.count() == 1


# --- variants ------------------------------------------------------------------------------------


def test_corrupted_variants_are_generated_linked_and_reproducible(api, make_study):
    study = make_study()
    body = {"corruptions": ["glass_blur", "jpeg_compression"], "severities": [2], "seed": 42}
    made = created(api.post(url("api-stimulus-variants", study.slug), body, format="json"))
    assert len(made) == 4 and {v["condition"] for v in made} == {"glass_blur-2", "jpeg_compression-2"}
    cat = study.stimuli.get(class_index=285, source__isnull=True)
    blur = next(v for v in made if v["source"] == cat.pk and v["condition"] == "glass_blur-2")
    assert (blur["corruption"], blur["severity"], blur["class_index"], blur["width"]) == ("glass_blur", 2, 285, 451)
    with cat.rendition.open("rb") as handle:
        pixels = np.asarray(Image.open(handle).convert("RGB"))
    assert b"".join(api.get(blur["image_url"]).streaming_content) == corrupt_png(pixels, "glass_blur", 2, blur["seed"])
    # The same request on a copy of the study gives the same bytes.
    clone = studies.study_clone(study=make_study(), owner=study.owner)
    again = created(api.post(url("api-stimulus-variants", clone.slug), body, format="json"))
    assert sorted(v["sha256"] for v in again) == sorted(v["sha256"] for v in made)
    assert "exist already" in problem(api.post(url("api-stimulus-variants", study.slug), body, format="json"), 409)["detail"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"corruptions": ["fog"], "severities": [1]}, "corruptions"),
        ({"corruptions": ["contrast"], "severities": [6]}, "severities"),
        ({"corruptions": [], "severities": [1]}, "corruptions"),
        ({"corruptions": ["contrast"], "severities": [1], "sources": [999999]}, "sources"),
        ({"corruptions": ["contrast"], "severities": [1], "seed": -1}, "seed"),
    ],
)
def test_bad_variant_requests_are_400(api, make_study, body, field):
    study = make_study()
    assert field in problem(api.post(url("api-stimulus-variants", study.slug), body, format="json"), 400)["fields"]
    assert study.stimuli.count() == 2


def test_catalogues_of_corruptions_and_explanation_options(api):
    corruptions = {c["name"]: c for c in api.get(url("api-corruptions")).json()}
    assert {"gaussian_noise", "glass_blur", "motion_blur", "defocus_blur", "contrast", "jpeg_compression", "pixelate"} <= set(corruptions)
    assert corruptions["glass_blur"]["severities"][1] == {"sigma": 0.9, "max_delta": 2, "iterations": 1}
    options = api.get(url("api-explain-options")).json()
    assert "efficientnet_lite0" in [m["key"] for m in options["models"]]
    assert {"key": "gradcam", "defaults": {"layer": "features"}} .items() <= next(m for m in options["methods"] if m["key"] == "gradcam").items()


def test_explanation_options_say_which_models_this_server_cannot_run_and_why(api, monkeypatch, tmp_path):
    from explain import model_catalogue

    missing = tmp_path / "absent-weights.pth"
    monkeypatch.setitem(model_catalogue.REGISTRY, "absent_net", model_catalogue.ModelSpec(
        key="absent_net", description="a model whose weights are not here", source="efficientnet_lite0",
        weights_path=lambda: missing))
    models = {m["key"]: m for m in api.get(url("api-explain-options")).json()["models"]}
    assert models["efficientnet_lite0"]["unavailable"] == ""
    assert str(missing) in models["absent_net"]["unavailable"]
    # the same reason refuses it in a study's models and methods
    answer = api.post(url("api-studies"), {"title": "t", "task_kinds": ["paint"], "participants_per_stimulus": 1,
                                           "stimuli_per_participant": 1, "consent_text": "ok",
                                           "explain_config": [{"model": "absent_net", "method": "gradcam"}]}, format="json")
    assert answer.status_code == 400 and str(missing) in json.dumps(answer.json())


# --- progress and scores -------------------------------------------------------------------------


def answer_trials(study, n_participants: int, per_participant: int):
    for _ in range(n_participants):
        participant, _ = participation.participant_start(study=study)
        for _ in range(per_participant):
            trial = participation.trial_next_assign(participant=participant)
            participation.response_submit(participant=participant, trial_id=trial.pk, client_uuid=uuid.uuid4(),
                                          payload=paint_payload([rect_stroke(5, 5, 60, 60)]))


def test_progress_counts_participants_responses_jobs_and_estimates_completion(api, make_study):
    study = make_study(launch=True, participants_per_stimulus=3, stimuli_per_participant=1)
    answer_trials(study, 2, 1)
    excluded, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=excluded)
    participation.response_submit(participant=excluded, trial_id=trial.pk, client_uuid=uuid.uuid4(), payload=paint_payload([rect_stroke(5, 5, 60, 60)]))
    Participant.objects.filter(pk=excluded.pk).update(status="excluded")
    participation.participant_start(study=study)  # started, nothing answered
    job = ExplanationJob.objects.filter(image_sha256=study.stimuli.first().sha256).first()
    ExplanationJob.objects.filter(pk=job.pk).update(status="failed", error="ModelUnavailable: weights missing", attempts=3)

    progress = created(api.get(url("api-study-progress", study.slug)), 200)
    assert progress["participants"] == {"started": 4, "active": 1, "completed": 2, "excluded": 1}
    assert progress["responses"] == {"done": 2, "target": 6, "fraction": pytest.approx(2 / 6)}
    assert sorted(s["responses"] for s in progress["stimuli"]) in ([0, 2], [1, 1])
    assert all(s["target"] == 3 and set(s["by_task_kind"]) == {"paint"} for s in progress["stimuli"])
    assert progress["jobs"]["by_status"] == {"pending": 1, "running": 0, "done": 0, "failed": 1}
    assert progress["jobs"]["failed"][0]["error"] == "ModelUnavailable: weights missing"
    estimate = progress["estimate"]
    assert estimate["remaining"] == 4 and estimate["responses_per_hour"] > 0
    assert estimate["seconds_left"] == pytest.approx(4 / estimate["responses_per_hour"] * 3600, rel=0.01, abs=1)
    assert estimate["completes_at"] is not None


def test_progress_of_a_draft_has_no_estimate(api, make_study):
    progress = api.get(url("api-study-progress", make_study().slug)).json()
    assert progress["responses"]["done"] == 0 and progress["estimate"]["seconds_left"] is None
    assert progress["jobs"]["total"] == 0


def test_scores_are_grouped_by_model_method_task_kind_and_metric(api, make_study):
    from analysis.models import Score

    study = make_study(launch=True)
    stimuli = list(study.stimuli.order_by("id"))
    for stimulus, pcc, sim in zip(stimuli, (0.5, 0.7), (0.4, None)):
        job = ExplanationJob.objects.get(image_sha256=stimulus.sha256)
        Score.objects.create(stimulus=stimulus, job=job, task_kind="paint", metric="pcc", value=pcc, n_participants=3)
        Score.objects.create(stimulus=stimulus, job=job, task_kind="paint", metric="sim", value=sim, n_participants=3)
    groups = {g["metric"]: g for g in created(api.get(url("api-study-scores", study.slug)), 200)}
    pcc = groups["pcc"]
    assert (pcc["model"], pcc["method"], pcc["task_kind"], pcc["params"]) == ("efficientnet_lite0", "gradcam", "paint", {"layer": "features"})
    assert pcc["summary"] == {"n": 2, "mean": pytest.approx(0.6), "sd": pytest.approx(np.std([0.5, 0.7], ddof=1)), "undefined": 0}
    assert pcc["by_condition"] == [{"condition": "original", "n": 2, "mean": pytest.approx(0.6), "sd": pytest.approx(0.1414213)}]
    assert [v["value"] for v in pcc["values"]] == [0.5, 0.7]
    assert groups["sim"]["summary"] == {"n": 1, "mean": 0.4, "sd": None, "undefined": 1}


# --- permissions ---------------------------------------------------------------------------------

READS = ["api-study", "api-stimuli", "api-study-progress", "api-study-scores", "api-study-shares"]
WRITES = [("post", "api-study-launch"), ("post", "api-study-pause"), ("post", "api-study-resume"), ("post", "api-study-close"),
          ("patch", "api-study"), ("post", "api-stimuli"), ("post", "api-stimuli-zip"), ("post", "api-stimulus-variants")]


def test_other_researchers_studies_do_not_exist_for_you(stranger, make_study):
    study = make_study()
    stimulus = study.stimuli.first()
    for name in READS + ["api-study-clone"]:
        method = "post" if name == "api-study-clone" else "get"
        assert getattr(stranger, method)(url(name, study.slug)).status_code == 404, name
    for method, name in WRITES + [("delete", "api-study"), ("post", "api-study-archive"), ("post", "api-study-restore")]:
        assert getattr(stranger, method)(url(name, study.slug), {"confirm": study.slug}, format="json").status_code == 404, name
    for name in ("api-stimulus", "api-stimulus-image", "api-stimulus-rendition"):
        assert stranger.get(url(name, study.slug, stimulus.pk)).status_code == 404, name
    assert stranger.delete(url("api-stimulus", study.slug, stimulus.pk)).status_code == 404
    assert stranger.put(url("api-study-share", study.slug, "stranger"), {"role": "edit"}, format="json").status_code == 404
    assert stranger.get(url("api-studies")).json() == []
    assert study.stimuli.count() == 2 and not study.shares.exists()


def test_a_stimulus_of_another_study_is_404_even_through_your_own_study(api, make_study, django_user_model):
    mine = make_study()
    theirs = studies.study_create(owner=django_user_model.objects.create_user(username="o"), title="theirs")
    other = studies.stimulus_create(study=theirs, data=png(), filename="o.png")
    problem(api.get(url("api-stimulus", mine.slug, other.pk)), 404)
    problem(api.delete(url("api-stimulus", mine.slug, other.pk)), 404)


def test_sharing_for_view_and_for_edit(api, make_study, django_user_model):
    study = make_study()
    colleague = django_user_model.objects.create_user(username="colleague")
    as_colleague = client_for(colleague)
    assert created(api.put(url("api-study-share", study.slug, "colleague"), {"role": "view"}, format="json"), 200)["role"] == "view"
    assert [s["slug"] for s in as_colleague.get(url("api-studies")).json()] == [study.slug]
    assert as_colleague.get(url("api-study", study.slug)).json()["access"] == "view"
    for name in READS:
        assert as_colleague.get(url(name, study.slug)).status_code == 200, name
    for method, name in WRITES:
        assert getattr(as_colleague, method)(url(name, study.slug), {}, format="json").status_code == 403, name
    assert as_colleague.delete(url("api-stimulus", study.slug, study.stimuli.first().pk)).status_code == 403
    # A viewer may clone into a study of their own.
    clone = created(as_colleague.post(url("api-study-clone", study.slug), {}, format="json"))
    assert clone["owner"] == "colleague" and clone["access"] == "owner"

    api.put(url("api-study-share", study.slug, "colleague"), {"role": "edit"}, format="json")
    assert created(as_colleague.patch(url("api-study", study.slug), {"title": "ours"}, format="json"), 200)["title"] == "ours"
    assert created(as_colleague.post(url("api-study-launch", study.slug)), 200)["status"] == "live"
    # Only the owner shares.
    body = problem(as_colleague.put(url("api-study-share", study.slug, "colleague"), {"role": "edit"}, format="json"), 403)
    assert "only its owner" in body["detail"]
    problem(as_colleague.delete(url("api-study-share", study.slug, "colleague")), 403)
    assert [s["username"] for s in api.get(url("api-study-shares", study.slug)).json()] == ["colleague"]
    assert api.delete(url("api-study-share", study.slug, "colleague")).status_code == 204
    problem(as_colleague.get(url("api-study", study.slug)), 404)


def test_share_input_is_checked(api, make_study, researcher):
    study = make_study()
    assert "role" in problem(api.put(url("api-study-share", study.slug, "x"), {"role": "admin"}, format="json"), 400)["fields"]
    assert "no researcher named" in problem(api.put(url("api-study-share", study.slug, "nobody"), {"role": "view"}, format="json"), 400)["detail"]
    assert "owns" in problem(api.put(url("api-study-share", study.slug, researcher.username), {"role": "view"}, format="json"), 400)["detail"]
    problem(api.delete(url("api-study-share", study.slug, "nobody")), 404)


def test_a_superuser_sees_every_study(make_study, django_user_model):
    study = make_study()
    admin = client_for(django_user_model.objects.create_superuser(username="root", password="x"))
    assert admin.get(url("api-study", study.slug)).json()["access"] == "owner"


def test_participant_endpoints_stay_anonymous_and_expose_no_one_else(make_study):
    study = make_study(launch=True)
    anonymous = APIClient()
    token = anonymous.post(url("participant-start", study.slug), {"consent": True}, format="json").json()["token"]
    assert anonymous.get(url("participant-trial-next", token)).status_code == 200
    assert anonymous.get(url("api-stimuli", study.slug)).status_code == 401


# --- the schema ----------------------------------------------------------------------------------


def test_the_openapi_schema_documents_every_researcher_endpoint(api):
    import yaml

    answer = APIClient().get("/api/schema/")
    assert answer.status_code == 200
    schema = yaml.safe_load(answer.content)
    assert schema["openapi"].startswith("3.")
    assert "tokenAuth" in schema["components"]["securitySchemes"] and "cookieAuth" in schema["components"]["securitySchemes"]
    researcher_paths = {p: ops for p, ops in schema["paths"].items() if "/participant" not in p and not p.endswith("/participants/")}
    assert len(researcher_paths) == 28  # 23 in studyserver/researcher/api/urls.py, 5 results in studyserver/researcher/api/result_urls.py
    for path, operations in researcher_paths.items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, (path, method)
            if path != "/api/v1/auth/token/":
                assert "401" in responses and responses["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOutput")
            if "{slug}" in path:
                assert "404" in responses, (path, method)
            if method in ("post", "put", "patch") and path.endswith(("/studies/", "/zip/", "/variants/", "/clone/")):
                assert "requestBody" in operation, (path, method)
    zip_body = schema["paths"]["/api/v1/studies/{slug}/stimuli/zip/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in zip_body
    docs = api.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_the_schema_generates_without_warnings():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null"],
        cwd=root, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings.test"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
