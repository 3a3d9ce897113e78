"""The researcher's dashboard in headless Chromium: the study list, the study page with its QR code
and copy button, launching with the confirmation step, progress that updates by itself when a
participant answers (no page reload), the gallery of a scored study, and a preview taken through the
participant's own page that stores nothing. Screenshots: tests/artifacts/dashboard-*.png."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from annotations.models import Participant, Response, StudyShare, Trial
from studyserver.researcher.services import studies
from tests.analysis.conftest import build_scored_study
from tests.conftest import ARTIFACTS, paint_payload, rect_stroke
from tests.e2e.browser import chromium_page, image_ready, paint_rectangle, shot
from tests.e2e.flows import practice

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def log_in(page, base: str, username: str, then: str) -> None:
    page.goto(f"{base}{then}")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"**{then}")


def _json(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def participant_answers_one(base: str, slug: str) -> None:
    """A participant, over HTTP as a browser's script would: consent, next trial, paint, submit."""
    token = _json(f"{base}/api/v1/studies/{slug}/participants/", {"consent": True})["token"]
    trial = _json(f"{base}/api/v1/participant/{token}/next/")["trial"]
    w, h = trial["width"], trial["height"]
    payload = paint_payload([rect_stroke(0.3 * w, 0.3 * h, 0.6 * w, 0.6 * h, radius=6)], w, h)
    _json(f"{base}/api/v1/participant/{token}/trials/{trial['id']}/response/",
          {"client_uuid": "6a1f4e57-6c1b-4c55-9b1e-0d6c3f0e9a01", "payload": payload})


def test_list_detail_qr_launch_and_live_progress(live_server, make_study, chromium_path, django_user_model):
    study = make_study()
    studies.study_update(study=study, title="Cats and coffee")
    colleague = django_user_model.objects.create_user(username="colleague", password="x")
    shared = studies.study_create(owner=colleague, title="A colleague's study (shared)")
    StudyShare.objects.create(study=shared, user=study.owner, role="view")
    base, slug = live_server.url, study.slug
    with chromium_page(chromium_path, **DESKTOP) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        log_in(page, base, study.owner.username, "/dashboard/studies/")
        assert page.locator("#studies tbody tr").count() == 2
        shot(page, "dashboard-1-list")
        page.click("text=Cats and coffee")
        page.wait_for_selector("#participant-link")
        qr = page.locator("#qr svg").bounding_box()
        assert qr["width"] >= 100 and qr["height"] >= 100
        page.click("#copy-link")
        page.wait_for_function("document.getElementById('copy-status').textContent === 'Copied.'")
        copied = page.evaluate("navigator.clipboard.readText()")
        for img in page.locator("img[loading=lazy]").all():
            img.scroll_into_view_if_needed()
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        shot(page, "dashboard-2-draft")
        page.click("#action-launch")
        page.wait_for_selector("#confirm")
        shot(page, "dashboard-3-confirm-launch")
        page.click("#confirm")
        page.wait_for_selector(".message.ok")
        launched_message = page.inner_text(".messages")
        status = page.inner_text("#study-status")
        page.evaluate("window.__sameDocument = true")
        before = page.inner_text("[data-field='responses.done']")
        participant_answers_one(base, slug)
        page.wait_for_function("document.querySelector(\"#meter-responses [data-field='responses.done']\").textContent === '1'",
                               timeout=20000)
        page.wait_for_function("document.getElementById('estimate-text').textContent.startsWith('About ')", timeout=20000)
        same_document = page.evaluate("window.__sameDocument === true")
        bar = page.get_attribute("#bar-responses", "aria-valuenow")
        started = page.inner_text("[data-field='participants.started']")
        card_counts = page.locator("[data-stimulus-responses]").all_inner_texts()
        shot(page, "dashboard-4-live-progress")
    assert copied == f"{base}/s/{slug}/"
    assert f"Study {slug} is live" in launched_message and status == "live"
    assert (before, bar, started, same_document) == ("0", "1", "1", True)
    assert sorted(card_counts) == ["0", "1"]


def test_gallery_of_a_scored_study(live_server, make_study, chromium_path):
    study = build_scored_study(make_study)
    username = study.owner.username
    with chromium_page(chromium_path, **DESKTOP) as page:
        log_in(page, live_server.url, username, f"/dashboard/studies/{study.slug}/")
        for img in page.locator("img[loading=lazy]").all():
            img.scroll_into_view_if_needed()
        page.wait_for_function("[...document.images].every(i => i.complete)", timeout=60000)
        broken = page.evaluate("[...document.images].filter(i => i.naturalWidth === 0).map(i => i.src)")
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "dashboard-5-scored-study")
        page.locator("#gallery").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "dashboard-6-gallery-view.png"))
        cards = page.locator(".stimulus-card").count()
        variant_caption = page.locator(".stimulus-card", has_text="gaussian_blur-3").inner_text()
        page.set_viewport_size({"width": 390, "height": 844})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "dashboard-7-phone.png"))
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert broken == [] and cards == 5 and overflow <= 0
    assert "of chelsea.png" in variant_caption


def test_models_and_methods_are_picked_in_a_table_that_writes_the_json(live_server, researcher, make_study, chromium_path):
    """The picker edits the JSON field, the JSON (with parameters) re-ticks the picker, and what is saved
    is what the JSON says; once the study is live the picker is greyed out with the field."""
    lite0 = "#explain-picker input[value='efficientnet_lite0:{}']"
    live = make_study(launch=True)
    with chromium_page(chromium_path, **DESKTOP) as page:
        log_in(page, live_server.url, researcher.username, "/dashboard/new-study/")
        page.fill("#id_title", "Picked methods")
        default_ticked = page.is_checked(lite0.format("gradcam"))
        page.check(lite0.format("smoothgrad"))
        page.check(lite0.format("occlusion"))
        page.uncheck(lite0.format("gradcam"))
        after_ticks = json.loads(page.input_value("#id_explain_config"))
        # parameters written by hand: the box follows the JSON, and unticking removes the entry
        page.fill("#id_explain_config", '[{"model": "efficientnet_lite0", "method": "rise", "params": {"n_masks": 500}}, '
                                        '{"model": "efficientnet_lite0", "method": "occlusion", "params": {}}')
        broken_note = page.inner_text(".picker-note")
        boxes_while_broken = page.is_disabled(lite0.format("rise"))
        page.fill("#id_explain_config", '[{"model": "efficientnet_lite0", "method": "rise", "params": {"n_masks": 500}}, '
                                        '{"model": "efficientnet_lite0", "method": "occlusion", "params": {}}]')
        follows = (page.is_checked(lite0.format("rise")), page.is_checked(lite0.format("smoothgrad")))
        page.uncheck(lite0.format("occlusion"))
        page.locator("#explain-picker").scroll_into_view_if_needed()
        shot(page, "dashboard-12-method-picker")
        page.click("#study-save")
        page.wait_for_selector("#design")
        page.goto(f"{live_server.url}/dashboard/studies/{live.slug}/settings/")
        live_boxes = page.locator("#explain-picker input").evaluate_all("els => els.map(e => [e.value, e.checked, e.disabled])")
    assert default_ticked
    assert after_ticks == [{"model": "efficientnet_lite0", "method": m, "params": {}} for m in ("smoothgrad", "occlusion")]
    assert "does not parse" in broken_note and boxes_while_broken
    assert follows == (True, False)
    saved = researcher.studies.get(title="Picked methods")
    assert saved.explain_config == [{"model": "efficientnet_lite0", "method": "rise", "params": {"n_masks": 500}}]
    assert ["efficientnet_lite0:gradcam", True, True] in live_boxes and all(disabled for _, _, disabled in live_boxes)


def test_preview_takes_the_study_and_stores_nothing(live_server, make_study, chromium_path):
    study = make_study(launch=True)
    counts = (Participant.objects.count(), Trial.objects.count(), Response.objects.count())
    username = study.owner.username
    with chromium_page(chromium_path, **DESKTOP) as page:
        log_in(page, live_server.url, username, f"/dashboard/studies/{study.slug}/")
        page.click("#preview-paint")
        page.wait_for_selector("#preview-banner")
        banner = page.inner_text("#preview-banner")
        practice(page, "paint", "dashboard-preview")
        for i in range(2):
            box = image_ready(page)
            paint_rectangle(page, box, 0.3, 0.3, 0.6, 0.7)
            if i == 0:
                shot(page, "dashboard-8-preview-trial")
            label = page.inner_text("#label")
            page.click("#submit")
            if i == 0:
                page.wait_for_function("document.querySelector('#label').textContent !== %r" % label)
        page.wait_for_url("**/preview/done/")
        summary = page.inner_text("#preview-summary")
        shot(page, "dashboard-9-preview-done")
    assert "PREVIEW" in banner and "nothing you do here is stored" in banner
    assert "You answered 2 of 2 images" in summary
    assert (Participant.objects.count(), Trial.objects.count(), Response.objects.count()) == counts


def test_design_a_study_in_the_browser(live_server, researcher, chromium_path, tmp_path):
    from studyserver.researcher.demo import demo_photo_bytes
    from tests.annotations.zipfiles import photo_zip

    (tmp_path / "rocket.jpg").write_bytes(demo_photo_bytes("rocket.jpg"))
    (tmp_path / "photos.zip").write_bytes(photo_zip())
    with chromium_page(chromium_path, **DESKTOP) as page:
        log_in(page, live_server.url, researcher.username, "/dashboard/studies/")
        page.click("#new-study")
        page.fill("#id_title", "Rockets and cats")
        page.check("input[name=task_kinds][value=bubble]")
        page.fill("#id_participants_per_stimulus", "12")
        shot(page, "dashboard-10-new-study")
        page.click("#study-save")
        page.wait_for_selector("#design")
        page.set_input_files("#upload-image input[name=image]", str(tmp_path / "rocket.jpg"))
        page.fill("#upload-image input[name=class_label]", "space shuttle")
        page.click("#upload-image-submit")
        page.wait_for_selector(".message")
        first = page.inner_text(".messages")
        page.set_input_files("#upload-zip input[name=archive]", str(tmp_path / "photos.zip"))
        page.click("#upload-zip-submit")
        page.wait_for_selector(".message")
        second = page.inner_text(".messages")
        page.check("#variants input[name=corruptions][value=glass_blur]")
        page.check("#variants input[name=severities][value='2']")
        page.click("#variants-submit")
        page.wait_for_selector(".message")
        third = page.inner_text(".messages")
        for img in page.locator("img[loading=lazy]").all():
            img.scroll_into_view_if_needed()
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "dashboard-11-designed")
        cards = page.locator(".stimulus-card").count()
    assert "1 stimulus image(s) added: rocket.jpg" in first, first
    assert "2 stimulus image(s) added: chelsea.png, coffee.png" in second, second
    assert "3 corrupted variant(s) made: glass_blur-2" in third, third
    assert cards == 6


def test_delete_a_draft_and_archive_then_restore_a_closed_study(live_server, make_study, chromium_path):
    draft = make_study()
    studies.study_update(study=draft, title="Pilot draft")
    done = studies.study_close(study=make_study(launch=True))
    studies.study_update(study=done, title="Finished study")
    draft_files = [Path(f.path) for s in draft.stimuli.all() for f in (s.image, s.rendition)]
    kept_files = [Path(f.path) for s in done.stimuli.all() for f in (s.image, s.rendition)]
    base = live_server.url
    with chromium_page(chromium_path, **DESKTOP) as page:
        log_in(page, base, draft.owner.username, f"/dashboard/studies/{draft.slug}/")
        page.click("#action-delete")
        page.wait_for_selector("#confirm-slug")
        shot(page, "dashboard-5-confirm-delete")
        page.fill("#confirm-slug", "not-the-slug")
        page.click("#confirm")
        page.wait_for_selector("#confirm-error")
        mistyped = page.inner_text("#confirm-error")
        page.fill("#confirm-slug", draft.slug)
        page.click("#confirm")
        page.wait_for_url(f"{base}/dashboard/")
        deleted_message = page.inner_text(".messages")
        listed = page.locator("#studies tbody tr[data-slug]").evaluate_all("rows => rows.map(r => r.dataset.slug)")

        page.goto(f"{base}/dashboard/studies/{done.slug}/")
        page.click("#action-archive")
        page.wait_for_selector("#confirm")
        shot(page, "dashboard-6-confirm-archive")
        page.click("#confirm")
        page.wait_for_selector("#study-archived")
        shot(page, "dashboard-7-archived")
        note = page.inner_text("#archived-note")
        page.goto(f"{base}/dashboard/")
        after_archive = page.locator("#studies tbody tr[data-slug]").count()
        page.click("#archived-studies")
        page.wait_for_selector("#current-studies")
        archived = page.locator("#studies tbody tr[data-slug]").evaluate_all("rows => rows.map(r => r.dataset.slug)")
        page.click("text=Finished study")
        page.click("#action-restore")
        page.click("#confirm")
        page.wait_for_selector(".message.ok")
        restored = page.locator("#study-archived").count()
    assert "confirm with its slug" in mistyped
    assert f"Study {draft.slug} is deleted." in deleted_message and listed == [done.slug]
    assert not any(p.exists() for p in draft_files) and all(p.exists() for p in kept_files)
    assert "hidden from the study lists" in note and after_archive == 0 and archived == [done.slug] and restored == 0
