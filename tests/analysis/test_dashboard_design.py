"""Designing a study from the dashboard: create, settings (frozen ones once live), uploads of one
image or a zip, corrupted variants, removal; bad input is named and stores nothing."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from annotations.models import Stimulus, Study, StudyShare
from studyserver.researcher.demo import demo_photo_bytes
from tests.annotations.zipfiles import photo_zip, png

pytestmark = pytest.mark.django_db

SETTINGS = {
    "title": "Cats", "slug": "", "task_kinds": ["paint"], "participants_per_stimulus": "5", "stimuli_per_participant": "2",
    "consent_text": "Yes, I agree.", "instructions_text": "", "completion_code": "", "redirect_url": "",
    "task_params": "{}", "explain_config": '[{"model": "efficientnet_lite0", "method": "gradcam", "params": {}}]',
}


@pytest.fixture
def owner(client, researcher):
    client.force_login(researcher)
    return client


def page_text(answer) -> str:
    return answer.content.decode()


def said(answer) -> str:
    """The page's messages (success and error), as text."""
    return " | ".join(m.strip() for m in re.findall(r'<p class="message[^>]*>([^<]*)</p>', page_text(answer)))


def media_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_create_a_draft_and_refuse_bad_settings(owner, researcher):
    form = owner.get(reverse("dashboard-study-new"))
    assert form.status_code == 200 and 'name="task_kinds"' in page_text(form)
    made = owner.post(reverse("dashboard-study-new"), SETTINGS)
    study = Study.objects.get(title="Cats")
    assert made.status_code == 302 and made["Location"] == f"/dashboard/studies/{study.slug}/"
    assert (study.owner, study.status, study.slug, study.participants_per_stimulus) == (researcher, "draft", "cats", 5)
    assert study.explain_config == [{"model": "efficientnet_lite0", "method": "gradcam", "params": {}}]
    for changes, text in (
        ({"task_kinds": []}, "This field is required."),
        ({"participants_per_stimulus": "0"}, "greater than or equal to 1"),
        ({"task_params": '{"paint": {"min_area": 3}}'}, "paint.min_area must be &gt;= 0 and &lt;= 1, got 3"),
        ({"explain_config": '[{"method": "nope"}]'}, "unknown method &#x27;nope&#x27;"),
        ({"slug": "cats"}, "the slug &#x27;cats&#x27; is taken"),
        ({"task_params": "{not json"}, "Enter a valid JSON."),
    ):
        refused = owner.post(reverse("dashboard-study-new"), {**SETTINGS, "title": "Bad", **changes})
        assert refused.status_code == 400 and text in page_text(refused), changes
    assert Study.objects.count() == 1


def test_settings_of_a_draft_then_only_the_running_ones(owner, make_study):
    study = make_study()
    url = reverse("dashboard-study-settings", args=[study.slug])
    assert 'value="Test study"' in page_text(owner.get(url))
    owner.post(url, {**SETTINGS, "slug": study.slug, "title": "Renamed", "consent_text": "New consent"})
    study.refresh_from_db()
    assert (study.title, study.consent_text, study.participants_per_stimulus) == ("Renamed", "New consent", 5)
    owner.post(reverse("dashboard-study-launch", args=[study.slug]))
    live_form = page_text(owner.get(url))
    assert "only title, participants_per_stimulus, completion_code, redirect_url may change" in live_form
    assert '<textarea name="consent_text" cols="40" rows="4" required disabled' in live_form
    # a changed frozen field is ignored (disabled), the running ones change
    owner.post(url, {**SETTINGS, "slug": "other", "title": "Live now", "consent_text": "sneaky", "participants_per_stimulus": "9"})
    study.refresh_from_db()
    assert (study.title, study.consent_text, study.slug, study.participants_per_stimulus) == ("Live now", "New consent", study.slug, 9)


def test_the_task_parameters_field_shows_what_participants_get(owner, make_study):
    """New study: the defaults; an existing one: its own settings with the defaults filled in."""
    new = page_text(owner.get(reverse("dashboard-study-new")))
    study = make_study(task_kinds=["bubble"], task_params={"bubble": {"bubble_radius": 40}})
    own = page_text(owner.get(reverse("dashboard-study-settings", args=[study.slug])))

    def resolved(page: str) -> str:
        return re.search(r'<details class="resolved" id="task-params-resolved">(.*?)</details>', page, re.S).group(1)

    assert "The defaults" in resolved(new) and "&quot;bubble_radius&quot;: 30.0" in resolved(new)
    assert "these settings with the defaults filled in" in resolved(own)
    assert "&quot;bubble_radius&quot;: 40.0" in resolved(own) and "&quot;min_clicks&quot;: 2" in resolved(own)


def test_a_view_share_cannot_change_anything(make_study, django_user_model):
    study = make_study()
    viewer = django_user_model.objects.create_user(username="viewer")
    StudyShare.objects.create(study=study, user=viewer, role="view")
    client = Client()
    client.force_login(viewer)
    assert client.get(reverse("dashboard-study-settings", args=[study.slug])).status_code == 403
    upload = {"image": SimpleUploadedFile("x.png", png(), "image/png")}
    assert client.post(reverse("dashboard-stimuli-upload", args=[study.slug]), upload).status_code == 403
    assert 'id="design"' not in page_text(client.get(reverse("dashboard-study", args=[study.slug])))
    assert study.stimuli.count() == 2


def test_uploads_variants_and_removal(owner, make_study, settings):
    study = make_study(photos=())
    upload = reverse("dashboard-stimuli-upload", args=[study.slug])
    assert 'id="design"' in page_text(owner.get(reverse("dashboard-study", args=[study.slug])))
    image = SimpleUploadedFile("rocket.jpg", demo_photo_bytes("rocket.jpg"), "image/jpeg")
    done = owner.post(upload, {"image": image, "class_label": "657", "role": "main", "condition": ""}, follow=True)
    assert "1 stimulus image(s) added: rocket.jpg" in page_text(done)
    assert study.stimuli.get().class_index == 657
    catch = SimpleUploadedFile("catch.png", png(100, 80), "image/png")
    refused = owner.post(upload, {"image": catch, "class_label": "orange", "role": "catch", "known_region": "10 20 160 70"}, follow=True)
    assert re.search(r"Nothing was uploaded: catch.png: .*x1 = 160.0 is outside the image \(0..100\)", page_text(refused))
    catch = SimpleUploadedFile("catch.png", png(100, 80), "image/png")
    owner.post(upload, {"image": catch, "class_label": "orange", "role": "catch", "known_region": "10, 20, 60, 70"})
    assert study.stimuli.get(role="catch").known_region == {"boxes": [[10.0, 20.0, 60.0, 70.0]], "polygons": []}
    paper = SimpleUploadedFile("paper.pdf", b"%PDF-1.4", "application/pdf")
    assert "paper.pdf: the file is not a readable image" in page_text(owner.post(upload, {"image": paper, "role": "main"}, follow=True))
    hostile = SimpleUploadedFile("s.zip", photo_zip(extra_rows=["../evil.png,1,,"], extra_members={"../evil.png": png()}))
    refused = page_text(owner.post(upload, {"archive": hostile}, follow=True))
    assert "&#x27;../evil.png&#x27; has a &#x27;..&#x27; part (path traversal)" in refused
    assert study.stimuli.count() == 2
    good = SimpleUploadedFile("s.zip", photo_zip())
    assert said(owner.post(upload, {"archive": good}, follow=True)) == "2 stimulus image(s) added: chelsea.png, coffee.png"
    variants = owner.post(reverse("dashboard-variants", args=[study.slug]),
                          {"corruptions": ["contrast", "pixelate"], "severities": ["2"], "seed": "7"}, follow=True)
    assert said(variants) == "6 corrupted variant(s) made: contrast-2, pixelate-2."
    assert "No variants made" in page_text(owner.post(reverse("dashboard-variants", args=[study.slug]), {"seed": "1"}, follow=True))
    chelsea = study.stimuli.get(name="chelsea.png")
    gone = owner.post(reverse("dashboard-stimulus-remove", args=[study.slug, chelsea.pk]), follow=True)
    assert "Removed chelsea.png and 2 variant(s)." in page_text(gone)
    assert study.stimuli.count() == 7 and not Stimulus.objects.filter(source=chelsea.pk).exists()
    settings.STIMULUS_MAX_BYTES = 1000
    big = SimpleUploadedFile("big.png", demo_photo_bytes("chelsea.png"), "image/png")
    assert "big.png is" in page_text(owner.post(upload, {"image": big, "role": "main"}, follow=True))
    settings.STIMULUS_MAX_BYTES = 10**7
    files = len(media_files(settings))
    owner.post(reverse("dashboard-study-launch", args=[study.slug]))
    late = SimpleUploadedFile("late.png", png(seed=5), "image/png")
    assert "only while it is a draft" in page_text(owner.post(upload, {"image": late, "role": "main"}, follow=True))
    assert study.stimuli.count() == 7 and len(media_files(settings)) == files
