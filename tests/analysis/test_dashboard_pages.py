"""The dashboard's study pages through Django's test client: who sees what, the progress shown,
lifecycle buttons with their confirmation step and CSRF, clone, the QR code, and the preview that
stores nothing."""
from __future__ import annotations

import random
import re
import uuid
import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Participant, Response, Study, StudyShare, Trial
from annotations.services import participation
from annotations.services import preview as preview_services
from explain.models import ExplanationJob
from studyserver.researcher import selectors as researcher_selectors
from studyserver.researcher.services import studies
from studyserver.researcher.templatetags.dashboard_tags import duration_text, estimate_text, unsteady
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user(username="colleague", password="pw")


def login(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def rows_counts() -> tuple[int, int, int]:
    return Participant.objects.count(), Trial.objects.count(), Response.objects.count()


def answer_one(study) -> None:
    """A real participant answers one trial through the services (paint, a rectangle in the middle)."""
    participant, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=participant)
    w, h = trial.stimulus.width, trial.stimulus.height
    payload = paint_payload([rect_stroke(w * 0.3, h * 0.3, w * 0.6, h * 0.6, radius=6)], w, h)
    participation.response_submit(participant=participant, trial_id=trial.pk, client_uuid=uuid.uuid4(), payload=payload)


# --- list and access -----------------------------------------------------------------------------


def test_the_list_shows_own_and_shared_studies_with_progress(owner, make_study, other, django_user_model):
    mine = make_study(launch=True)
    answer_one(mine)
    theirs = Study.objects.create(owner=other, slug="theirs", title="Their study")
    hidden = Study.objects.create(owner=other, slug="hidden", title="Hidden study")
    StudyShare.objects.create(study=theirs, user=mine.owner, role="view")
    page = owner.get(reverse("dashboard-studies"))
    html = page.content.decode()
    assert page.status_code == 200 and "Their study" in html and "shared by colleague" in html and "Hidden study" not in html
    listed = {s.slug: s for s in page.context["studies"]}
    assert set(listed) == {mine.slug, theirs.slug} and hidden.slug not in listed
    assert (listed[mine.slug].n_participants, listed[mine.slug].n_responses, listed[mine.slug].responses_target) == (1, 1, 6)
    assert 'aria-valuenow="1"' in html and "1 of 6" in html
    assert owner.get(reverse("dashboard")).status_code == 200


def test_pages_need_a_login_and_hide_other_researchers_studies(client, make_study, other):
    study = make_study()
    urls = [reverse("dashboard-study", args=[study.slug]), reverse("dashboard-study-launch", args=[study.slug]),
            reverse("dashboard-study-clone", args=[study.slug]), reverse("dashboard-study-qr", args=[study.slug]),
            reverse("dashboard-preview", args=[study.slug]), reverse("dashboard-stimulus-png", args=[study.stimuli.first().pk])]
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/"), url
    stranger = login(other)
    for url in urls:
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(reverse("dashboard-study-launch", args=[study.slug])).status_code == 404
    assert Study.objects.get(pk=study.pk).status == "draft"


def test_a_view_share_sees_everything_but_cannot_change_the_lifecycle(make_study, other):
    study = make_study()
    StudyShare.objects.create(study=study, user=other, role="view")
    viewer = login(other)
    page = viewer.get(reverse("dashboard-study", args=[study.slug]))
    html = page.content.decode()
    assert page.status_code == 200 and "you have view access" in html and 'id="action-launch"' not in html
    assert viewer.get(reverse("dashboard-stimulus-png", args=[study.stimuli.first().pk])).status_code == 200
    assert viewer.get(reverse("dashboard-study-launch", args=[study.slug])).status_code == 403
    assert viewer.post(reverse("dashboard-study-launch", args=[study.slug])).status_code == 403
    assert Study.objects.get(pk=study.pk).status == "draft"
    report = viewer.get(reverse("dashboard-report", args=[study.slug])).content.decode()
    assert "Human ceiling" in report and 'id="reliability-recompute"' not in report
    assert viewer.post(reverse("dashboard-reliability", args=[study.slug])).status_code == 403
    assert viewer.get(reverse("dashboard-table", args=[study.slug, "summary"])).status_code == 200
    StudyShare.objects.filter(study=study, user=other).update(role="edit")
    assert viewer.post(reverse("dashboard-study-launch", args=[study.slug])).status_code == 302
    assert Study.objects.get(pk=study.pk).status == "live"


# --- the study page ------------------------------------------------------------------------------


def test_the_study_page_shows_progress_link_qr_preview_and_downloads(owner, make_study):
    study = make_study(launch=True, task_kinds=["paint", "bubble"])
    answer_one(study)
    page = owner.get(reverse("dashboard-study", args=[study.slug]))
    html = page.content.decode()
    link = f"http://testserver/s/{study.slug}/"
    assert page.status_code == 200
    assert f'value="{link}"' in html and 'id="copy-link"' in html
    assert re.search(r'<svg role="img" width="\d+" height="\d+" class="segno"><title>QR code of ' + re.escape(link), html)
    assert f'href="/dashboard/studies/{study.slug}/preview/?kind=paint"' in html and "?kind=bubble" in html
    progress = page.context["progress"]
    assert progress == researcher_selectors.study_progress(study=study) | {"estimate": progress["estimate"]}
    assert progress["participants"]["started"] == 1 and progress["responses"] == {"done": 1, "target": 12, "fraction": 1 / 12}
    assert 'data-progress-url="/api/v1/studies/%s/progress/"' % study.slug in html
    assert '<strong data-field="responses.done">1</strong> of <span data-field="responses.target">12</span>' in html
    assert "About " in html and "per hour" in html  # the estimate, from one response since launch
    for name in ("summary", "scores"):
        assert reverse("dashboard-table", args=[study.slug, name]) in html
    assert reverse("dashboard-export-maps", args=[study.slug]) in html and reverse("dashboard-report", args=[study.slug]) in html
    for action in ("pause", "close"):
        assert f'id="action-{action}"' in html
    assert 'id="action-launch"' not in html and 'id="action-resume"' not in html
    assert ExplanationJob.objects.filter(image_sha256__in=study.stimuli.values("sha256")).count() == 2
    assert html.count("no responses yet") >= 3  # the gallery's placeholders (2 stimuli x 2 kinds, one answered)


def test_failed_jobs_show_their_error(owner, make_study):
    study = make_study(launch=True)
    ExplanationJob.objects.filter(image_sha256=study.stimuli.first().sha256).update(status="failed", error="CUDA out of memory, sort of")
    html = owner.get(reverse("dashboard-study", args=[study.slug])).content.decode()
    assert "CUDA out of memory, sort of" in html and 'data-field="jobs.by_status.failed">1<' in html


def test_the_qr_code_file_is_an_svg_of_the_link(owner, make_study):
    study = make_study()
    answer = owner.get(reverse("dashboard-study-qr", args=[study.slug]) + "?download=1")
    assert answer["Content-Type"] == "image/svg+xml" and "attachment" in answer["Content-Disposition"]
    root = ET.fromstring(answer.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title").text == f"QR code of http://testserver/s/{study.slug}/"


# --- lifecycle with confirmation -----------------------------------------------------------------


def test_launch_asks_first_then_needs_the_csrf_token(researcher, make_study):
    study = make_study()
    browser = login(researcher, enforce_csrf_checks=True)
    confirm = browser.get(reverse("dashboard-study-launch", args=[study.slug]))
    assert confirm.status_code == 200 and "Yes, launch the study" in confirm.content.decode()
    assert Study.objects.get(pk=study.pk).status == "draft"  # asking changes nothing
    assert browser.post(reverse("dashboard-study-launch", args=[study.slug])).status_code == 403  # no CSRF token
    token = browser.cookies["csrftoken"].value
    done = browser.post(reverse("dashboard-study-launch", args=[study.slug]), {"csrfmiddlewaretoken": token}, follow=True)
    assert Study.objects.get(pk=study.pk).status == "live"
    assert f"Study {study.slug} is live" in done.content.decode()


def test_pause_resume_close_and_errors_come_back_as_messages(owner, make_study, researcher):
    study = make_study(launch=True)
    for action, status in (("pause", "paused"), ("resume", "live"), ("pause", "paused"), ("close", "closed")):
        owner.post(reverse(f"dashboard-study-{action}", args=[study.slug]))
        assert Study.objects.get(pk=study.pk).status == status, action
    refused = owner.post(reverse("dashboard-study-resume", args=[study.slug]), follow=True)
    assert "Resume failed: study %s is closed; only a paused study can be resumed" % study.slug in refused.content.decode()
    empty = studies.study_create(owner=researcher, title="Empty")
    refused = owner.post(reverse("dashboard-study-launch", args=[empty.slug]), follow=True).content.decode()
    assert "Launch failed: study empty has no stimuli; upload images before launching" in refused
    assert Study.objects.get(pk=empty.pk).status == "draft"
    assert owner.get(reverse("dashboard-study", args=[study.slug]) + "nope/").status_code == 404


def test_clone_makes_a_draft_of_your_own_and_names_problems(make_study, other):
    study = make_study(launch=True)
    StudyShare.objects.create(study=study, user=other, role="view")
    colleague = login(other)
    form = colleague.get(reverse("dashboard-study-clone", args=[study.slug]))
    assert 'value="Test study (copy)"' in form.content.decode()
    made = colleague.post(reverse("dashboard-study-clone", args=[study.slug]), {"title": "Mine now", "slug": "mine-now"})
    assert made.status_code == 302 and made["Location"] == "/dashboard/studies/mine-now/"
    clone = Study.objects.get(slug="mine-now")
    assert (clone.owner, clone.status, clone.stimuli.count()) == (other, "draft", 2)
    before = Study.objects.count()
    taken = colleague.post(reverse("dashboard-study-clone", args=[study.slug]), {"title": "Again", "slug": "mine-now"})
    assert taken.status_code == 400 and "the slug &#x27;mine-now&#x27; is taken" in taken.content.decode()
    assert Study.objects.count() == before


# --- delete, archive, restore ----------------------------------------------------------------------


def test_deleting_a_draft_asks_for_its_slug_then_goes_back_to_the_list(researcher, make_study, settings,
                                                                         django_capture_on_commit_callbacks):
    from pathlib import Path

    study = make_study()
    browser = login(researcher, enforce_csrf_checks=True)
    page = browser.get(reverse("dashboard-study", args=[study.slug])).content.decode()
    assert 'id="action-delete"' in page and 'id="action-archive"' not in page
    confirm = browser.get(reverse("dashboard-study-delete", args=[study.slug]))
    html = confirm.content.decode()
    assert confirm.status_code == 200 and "Yes, delete the study" in html and 'name="confirm"' in html
    assert "2 stimuli" in html and "cannot be undone" in html
    token = browser.cookies["csrftoken"].value
    assert browser.post(reverse("dashboard-study-delete", args=[study.slug]), {"confirm": study.slug}).status_code == 403  # CSRF
    mistyped = browser.post(reverse("dashboard-study-delete", args=[study.slug]), {"confirm": "oops", "csrfmiddlewaretoken": token})
    assert mistyped.status_code == 400 and "confirm with its slug" in mistyped.content.decode()
    assert Study.objects.filter(pk=study.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = browser.post(reverse("dashboard-study-delete", args=[study.slug]),
                            {"confirm": study.slug, "csrfmiddlewaretoken": token}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("dashboard")
    assert f"Study {study.slug} is deleted." in done.content.decode()
    assert not Study.objects.filter(pk=study.pk).exists()
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_a_launched_study_offers_no_delete_and_refuses_one(owner, make_study):
    study = make_study(launch=True)
    assert 'id="action-delete"' not in owner.get(reverse("dashboard-study", args=[study.slug])).content.decode()
    refused = owner.post(reverse("dashboard-study-delete", args=[study.slug]), {"confirm": study.slug}, follow=True)
    assert "Delete failed: study %s is live; only a draft that was never launched can be deleted" % study.slug in refused.content.decode()
    assert Study.objects.filter(pk=study.pk).exists()


def test_archiving_hides_a_closed_study_from_the_list_and_restore_brings_it_back(owner, make_study):
    study = studies.study_close(study=make_study(launch=True))
    page = owner.get(reverse("dashboard-study", args=[study.slug])).content.decode()
    assert 'id="action-archive"' in page and 'id="action-delete"' not in page
    assert "Yes, archive the study" in owner.get(reverse("dashboard-study-archive", args=[study.slug])).content.decode()
    done = owner.post(reverse("dashboard-study-archive", args=[study.slug]), follow=True)
    assert done.redirect_chain[-1][0] == reverse("dashboard-study", args=[study.slug])
    html = done.content.decode()
    assert 'id="study-archived"' in html and 'id="archived-note"' in html and 'id="action-restore"' in html
    assert study.slug not in [s.slug for s in owner.get(reverse("dashboard")).context["studies"]]
    archived = owner.get(reverse("dashboard") + "?archived=1")
    assert [s.slug for s in archived.context["studies"]] == [study.slug] and "Archived studies" in archived.content.decode()
    assert owner.get(reverse("dashboard-report", args=[study.slug])).status_code == 200  # data kept, pages work
    owner.post(reverse("dashboard-study-restore", args=[study.slug]))
    assert Study.objects.get(pk=study.pk).archived_at is None
    assert study.slug in [s.slug for s in owner.get(reverse("dashboard")).context["studies"]]


def test_only_the_owner_deletes_archives_or_restores_on_the_dashboard(make_study, other):
    draft, study = make_study(), studies.study_close(study=make_study(launch=True))
    for shared in (draft, study):
        StudyShare.objects.create(study=shared, user=other, role="edit")
    editor = login(other)
    assert 'id="action-delete"' not in editor.get(reverse("dashboard-study", args=[draft.slug])).content.decode()
    page = editor.get(reverse("dashboard-study", args=[study.slug])).content.decode()
    assert 'id="action-archive"' not in page and "Only the owner deletes, archives or restores" in page
    for name, target in (("delete", draft), ("archive", study), ("restore", study)):
        assert editor.get(reverse(f"dashboard-study-{name}", args=[target.slug])).status_code == 403, name
        assert editor.post(reverse(f"dashboard-study-{name}", args=[target.slug]), {"confirm": target.slug}).status_code == 403, name
    assert Study.objects.filter(pk=draft.pk).exists() and Study.objects.get(pk=study.pk).archived_at is None


# --- preview ---------------------------------------------------------------------------------------


def _paint(trial: dict) -> dict:
    w, h = trial["width"], trial["height"]
    return paint_payload([rect_stroke(w * 0.3, h * 0.3, w * 0.6, h * 0.6, radius=6)], w, h)


def test_a_preview_walks_the_whole_study_and_stores_nothing(owner, make_study):
    study = make_study(launch=True)
    answer_one(study)
    before = rows_counts()
    task = owner.get(reverse("dashboard-preview", args=[study.slug]), follow=True)
    html = task.content.decode()
    assert task.status_code == 200 and "PREVIEW" in html and "nothing you do here is stored" in html
    assert '"nextUrl": "/dashboard/studies/%s/preview/next/"' % study.slug in html
    practice = owner.get(reverse("dashboard-preview-practice", args=[study.slug])).json()
    assert practice["practice"] and practice["done"] is False
    assert owner.get(practice["image_url"])["Content-Type"] == "image/png"
    wrong = owner.post(reverse("dashboard-preview-practice", args=[study.slug]), {"payload": paint_payload([])}, content_type="application/json")
    assert wrong.status_code == 400 and wrong.json()["fields"]
    ok = owner.post(reverse("dashboard-preview-practice", args=[study.slug]), {"payload": _paint(practice)}, content_type="application/json")
    assert ok.status_code == 200
    shown = []
    while True:
        step = owner.get(reverse("dashboard-preview-next", args=[study.slug])).json()
        if step["done"]:
            break
        trial = step["trial"]
        shown.append(trial["name"])
        image = owner.get(trial["image_url"])
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        url = reverse("dashboard-preview-response", args=[study.slug, trial["id"]])
        empty = owner.post(url, {"payload": paint_payload([], trial["width"], trial["height"])}, content_type="application/json")
        assert empty.status_code == 400 and "strokes" in empty.json()["fields"]
        saved = owner.post(url, {"payload": _paint(trial)}, content_type="application/json")
        assert saved.status_code == 201 and saved.json()["stored"] is False
        assert owner.post(url, {"payload": _paint(trial)}, content_type="application/json").status_code == 409
    assert sorted(shown) == ["chelsea.png", "coffee.png"] and step["progress"] == {"done": 2, "total": 2}
    done = owner.get(reverse("dashboard-preview-done", args=[study.slug])).content.decode()
    assert "You answered 2 of 2 images" in done and "No participant, trial or response was stored" in done
    assert rows_counts() == before
    assert researcher_selectors.study_progress(study=study)["responses"]["done"] == 1


def test_preview_of_a_draft_with_variants_and_kinds(owner, make_study):
    study = make_study(task_kinds=["paint", "bubble"], stimuli_per_participant=1)
    chelsea = study.stimuli.get(name="chelsea.png")
    studies.stimulus_variants_create(study=study, corruptions=["contrast"], severities=[3], seed=1, source_ids=[chelsea.pk])
    study.stimuli_per_participant = 2
    for seed in range(12):  # two images, never two conditions of one photo
        plan = preview_services.preview_plan(study=study, rng=random.Random(seed))
        sources = {s.source_id or s.pk for s in study.stimuli.filter(pk__in=plan)}
        assert len(plan) == 2 and len(sources) == 2
    assert owner.get(reverse("dashboard-preview", args=[study.slug]) + "?kind=mouse").status_code == 404
    owner.get(reverse("dashboard-preview", args=[study.slug]) + "?kind=bubble")
    step = owner.get(reverse("dashboard-preview-next", args=[study.slug])).json()
    assert step["trial"]["task_kind"] == "bubble" and step["progress"]["total"] == 1
    assert step["trial"]["params"]["bubble_radius"] > 0
    assert rows_counts() == (0, 0, 0) and Study.objects.get(pk=study.pk).status == "draft"


def test_estimate_in_words():
    assert [duration_text(s) for s in (20, 60 * 12, 3600 * 2 + 300, 86400 * 3 + 3600 * 4)] == [
        "under a minute", "12 min", "2 h 5 min", "3 d 4 h"]
    base = {"status": "live", "responses": {"done": 0, "target": 10}, "estimate": {"remaining": 10, "seconds_left": None}}
    assert "no estimate" in estimate_text(base)
    assert estimate_text(base | {"responses": {"done": 0, "target": 0}}).startswith("No target yet")
    assert estimate_text(base | {"estimate": {"remaining": 0, "seconds_left": None}}).startswith("Complete")


def test_a_normalised_score_is_marked_unsteady_when_its_ci_outgrows_the_floor_to_ceiling_range():
    from analysis.statistics import EMPTY, Summary

    nan = float("nan")
    assert not unsteady(Summary(7, 0.6, 0.2, 0.3, 0.9)) and not unsteady(Summary(7, 0.6, 0.2, -0.35, 1.6))
    assert unsteady(Summary(2, -193.9, 50.0, -193.9, 19.5)) and unsteady(Summary(3, 0.5, nan, nan, nan))
    assert not unsteady(Summary(1, 4.0, nan, nan, nan)) and not unsteady(EMPTY) and not unsteady(None)
