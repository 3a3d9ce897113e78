"""On a phone-sized screen with a touchscreen: painting with a finger, tapping bubbles, a reload in the
middle of a trial that resumes it, and the screen calibration of a study sized in degrees."""
import numpy as np
import pytest

from annotations.models import Participant, Response, Trial
from annotations.rasterize import paint_mask
from tests.e2e.browser import PHONE, chromium_page, image_ready, reveal, shot, touch_drag, zigzag
from tests.e2e.flows import ball_fraction, practice

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def tap(page, selector):
    page.wait_for_selector(selector)
    page.tap(selector)


def test_painting_with_a_finger_on_a_phone_and_a_reload_resumes_the_trial(live_server, make_study, chromium_path):
    study = make_study(launch=True, participants_per_stimulus=3, stimuli_per_participant=2)
    with chromium_page(chromium_path, **PHONE) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=phone-1")
        shot(page, "phone-1-consent")
        tap(page, "#consent-box")
        tap(page, "#consent-submit")
        page.wait_for_selector("#instructions:not([hidden])")
        page.wait_for_timeout(300)
        shot(page, "phone-2-instructions")
        tap(page, "#start")
        box = image_ready(page)
        bx, by = ball_fraction()
        touch_drag(page, zigzag(box, bx - 0.12, by - 0.15, bx + 0.12, by + 0.15, step=8))
        shot(page, "phone-3-practice")
        tap(page, "#submit")
        page.wait_for_selector("#practice-done:not([hidden])")
        tap(page, "#begin")
        # trial 1: paint the left part with a finger
        box = image_ready(page)
        assert box["width"] <= 390 and box["x"] >= 0 and box["x"] + box["width"] <= 390
        touch_drag(page, zigzag(box, 0.05, 0.1, 0.45, 0.9, step=8))
        shot(page, "phone-4-trial-0")
        first = page.inner_text("#label")
        tap(page, "#submit")
        page.wait_for_function("document.getElementById('label').textContent !== %r" % first)
        # trial 2: start painting, then the page is reloaded: the same trial comes back, empty
        box = image_ready(page)
        second = page.inner_text("#label")
        touch_drag(page, zigzag(box, 0.6, 0.1, 0.9, 0.5, step=8))
        page.reload()
        box = image_ready(page)
        assert page.inner_text("#label") == second and page.locator("#instructions").is_hidden()
        assert page.inner_text("#progress-text") == "1 / 2"
        shot(page, "phone-5-after-reload")
        touch_drag(page, zigzag(box, 0.05, 0.1, 0.45, 0.9, step=8))
        tap(page, "#submit")
        page.wait_for_url("**/done/")
        shot(page, "phone-6-done")

    participant = Participant.objects.get(study=study, external_id="phone-1")
    assert participant.status == Participant.Status.COMPLETED
    trials = list(participant.trials.order_by("position"))
    assert [t.served_count for t in trials] == [1, 2] and all(t.status == Trial.Status.DONE for t in trials)
    for response in Response.objects.filter(trial__participant=participant).select_related("trial__stimulus"):
        stimulus, payload = response.trial.stimulus, response.payload
        assert payload["pointer_types"] == ["touch"]
        assert payload["display"]["dpr"] == 3 and payload["display"]["viewport"] == [390, 844]
        assert payload["display"]["width"] <= 390
        mask = paint_mask(payload["strokes"], stimulus.height, stimulus.width)
        h, w = mask.shape
        assert mask[int(0.2 * h): int(0.8 * h), int(0.12 * w): int(0.38 * w)].mean() > 0.97
        assert not mask[:, int(0.55 * w):].any(), "strokes from before the reload were kept"


def test_bubble_description_with_taps_on_a_phone(live_server, make_study, chromium_path):
    study = make_study(task_kinds=["bubble"], photos=("chelsea.png",), labels=(285,), stimuli_per_participant=1,
                       launch=True, task_params={"bubble": {"variant": "description"}})
    text = "A tabby cat sits facing the camera with its ears up; the striped fur, whiskers and pale eyes stand out " \
           "against a soft pinkish background."
    assert len(text) >= 150 - 30  # typed twice below when needed
    with chromium_page(chromium_path, **PHONE) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/")
        tap(page, "#consent-box")
        tap(page, "#consent-submit")
        tap(page, "#start")
        for name in ("practice", "trial"):
            image_ready(page)
            box = reveal(page)
            tap(page, "#submit")
            assert "Click at least 10 times" in page.inner_text("#status")
            for i in range(10):
                page.touchscreen.tap(box["x"] + (0.2 + 0.06 * i) * box["width"], box["y"] + 0.5 * box["height"])
            page.fill("#description", text[:100])
            tap(page, "#submit")
            assert "Write at least 150 characters" in page.inner_text("#status")
            page.fill("#description", text + " " + text[:40])
            shot(page, f"phone-bubble-{name}")
            tap(page, "#submit")
            if name == "practice":
                tap(page, "#begin")
        page.wait_for_url("**/done/")

    response = Response.objects.get(trial__participant__study=study)
    payload, stimulus = response.payload, response.trial.stimulus
    assert payload["variant"] == "description" and payload["description"].startswith("A tabby cat")
    assert payload["pointer_types"] == ["touch"] and len(payload["clicks"]) == 10
    xs = np.array(payload["clicks"])[:, 0] / stimulus.width
    np.testing.assert_allclose(xs, 0.2 + 0.06 * np.arange(10), atol=0.01)


def test_a_study_in_degrees_starts_with_the_card_calibration(live_server, make_study, chromium_path):
    study = make_study(photos=("coffee.png",), labels=(967,), stimuli_per_participant=1, launch=True,
                       task_params={"units": "deg", "display_size": 10})
    with chromium_page(chromium_path, **PHONE) as page:  # the card stands upright on a narrow screen
        page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=deg-phone")
        tap(page, "#consent-box")
        tap(page, "#consent-submit")
        page.wait_for_selector("#calibration:not([hidden])")
        card = page.locator("#card").bounding_box()
        assert card["height"] > card["width"]
        shot(page, "deg-phone-calibration")
    with chromium_page(chromium_path, viewport={"width": 1100, "height": 900}) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=deg-1")
        page.check("#consent-box")
        page.click("#consent-submit")
        page.wait_for_selector("#calibration:not([hidden])")
        page.locator("#card-size").fill("427")
        page.click("#card-larger")
        card = page.locator("#card").bounding_box()
        assert card["width"] == pytest.approx(428, abs=1) and card["height"] == pytest.approx(428 * 53.98 / 85.6, abs=1)
        shot(page, "deg-1-calibration")
        page.click("#calibrate")
        practice(page, "paint", "deg")
        box = image_ready(page)
        assert box["width"] == pytest.approx(50 * 2 * 57 * np.tan(np.radians(5)), abs=1)  # 10 deg at 50 px/cm
        from tests.e2e.browser import paint_rectangle

        paint_rectangle(page, box, 0.3, 0.3, 0.6, 0.6)
        page.click("#submit")
        page.wait_for_url("**/done/")

    participant = Participant.objects.get(external_id="deg-1")
    assert participant.calibration["card_width_px"] == 428 and participant.calibration["px_per_cm"] == pytest.approx(50)
    response = Response.objects.get(trial__participant=participant)
    assert response.payload["display"]["width"] == pytest.approx(50 * 2 * 57 * np.tan(np.radians(5)), abs=0.01)


def test_consent_refusal_and_a_full_study_on_a_phone(live_server, researcher, chromium_path):
    from annotations.services import participation
    from tests.annotations.test_participation import tiny_study

    study = tiny_study(researcher, n_main=1, participants_per_stimulus=1, stimuli_per_participant=1)
    with chromium_page(chromium_path, **PHONE) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=early")
        tap(page, "#consent-submit")  # the box is not ticked
        assert "tick the box" in page.inner_text("p.error")
        shot(page, "phone-consent-refused")
    first = Participant.objects.filter(study=study).first()
    assert first is None  # refusing consent records nobody
    someone, _ = participation.participant_start(study=study)
    participation.trial_next_assign(participant=someone)  # holds the only slot
    with chromium_page(chromium_path, **PHONE) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=late")
        tap(page, "#consent-box")
        tap(page, "#consent-submit")
        assert "all the participants it needs" in page.inner_text("#closed")
        shot(page, "phone-study-full")
    assert not Participant.objects.filter(external_id="late").exists()
