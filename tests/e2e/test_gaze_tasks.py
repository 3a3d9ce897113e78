"""BubbleView and mouse-contingent viewing, taken whole in headless Chromium with real mouse input:
the blur is a Gaussian of the set sigma, one bubble is open at a time, samples come every ~10 ms,
and what is stored is in stimulus pixels where the participant clicked or pointed."""
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from annotations.models import Participant, Response
from tests.e2e.browser import chromium_page, image_ready, reveal, shot
from tests.e2e.flows import CATCH_BOX, CATCH_LABEL, canvas_pixels, catch_add, click_at, mouse_circle, practice

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"viewport": {"width": 1100, "height": 900}}


def renditions(study) -> dict:
    """label shown to participants -> the stimulus' RGB array."""
    from annotations.selectors import class_label_short

    return {class_label_short(s.class_name): np.asarray(Image.open(s.rendition.path).convert("RGB")) for s in study.stimuli.all()}


def blurred_reference(image: np.ndarray, width: int, height: int, sigma: float) -> np.ndarray:
    """The image resized to the canvas (bilinear) and blurred with a Gaussian (mirrored borders)."""
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR), dtype=np.float64)
    return ndimage.gaussian_filter(resized, sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0)


def test_bubbleview_free_viewing_with_a_catch_trial_and_a_delayed_redirect(live_server, make_study, chromium_path):
    study = make_study(task_kinds=["bubble"], participants_per_stimulus=3, stimuli_per_participant=2,
                       redirect_url=f"{live_server.url}/accounts/login/?from=study",
                       task_params={"bubble": {"time_limit_s": 2.5}, "completion": {"redirect_delay_s": 1}})
    catch_add(study)
    from studyserver.researcher.services import studies

    study = studies.study_launch(study=study)
    images = renditions(study)
    checks, clicked = {}, {}
    with chromium_page(chromium_path, **DESKTOP) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=bubble-1")
        shot(page, "bubble-1-consent")
        page.check("#consent-box")
        page.click("#consent-submit")
        practice(page, "bubble", "bubble")
        for i in range(3):
            image_ready(page)
            label = page.inner_text("#label")
            shot(page, f"bubble-5-gate-{i}")
            box = reveal(page)
            if label != CATCH_LABEL and "blur" not in checks:
                checks["blur"] = (label, canvas_pixels(page, "#stage canvas.view"))
            spots = [(0.375, 0.58), (0.3, 0.5), (0.5, 0.7)] if label == CATCH_LABEL else [(0.3, 0.4), (0.7, 0.6), (0.5, 0.5)]
            for fx, fy in spots:
                click_at(page, box, fx, fy)
            clicked[label] = spots
            if label != CATCH_LABEL and "bubble" not in checks:
                checks["bubble"] = (label, canvas_pixels(page, "#stage canvas.view"), spots)
            shot(page, f"bubble-6-trial-{i}")
            # the viewing time runs out, the answer is saved, the next image comes by itself
            if i < 2:
                page.wait_for_function("document.getElementById('label').textContent !== %r" % label, timeout=15000)
        page.wait_for_url("**/done/", timeout=15000)
        shot(page, "bubble-7-done")
        code = page.inner_text("#completion-code")
        page.wait_for_url("**/accounts/login/?from=study", timeout=10000)  # the redirect, after the code was shown

    assert code == study.completion_code
    participant = Participant.objects.get(study=study, external_id="bubble-1")
    assert participant.status == Participant.Status.COMPLETED and participant.practice_done_at
    responses = list(Response.objects.filter(trial__participant=participant).select_related("trial__stimulus"))
    assert len(responses) == 3
    for response in responses:
        stimulus, payload = response.trial.stimulus, response.payload
        from annotations.selectors import class_label_short

        spots = clicked[class_label_short(stimulus.class_name)]
        got = np.array(payload["clicks"])
        assert got.shape == (3, 3) and payload["pointer_types"] == ["mouse"] and "Chrome" in payload["user_agent"]
        np.testing.assert_allclose(got[:, 0] / stimulus.width, [s[0] for s in spots], atol=0.005)
        np.testing.assert_allclose(got[:, 1] / stimulus.height, [s[1] for s in spots], atol=0.005)
        assert (np.diff(got[:, 2]) >= 0).all() and got[-1, 2] <= 2500
        assert payload["display"]["width"] == pytest.approx(500 * stimulus.width / max(stimulus.width, stimulus.height), abs=0.01)
        assert payload["blur_sigma"] == pytest.approx(30 * max(stimulus.width, stimulus.height) / 500, abs=0.01)
        if stimulus.role == "catch":
            assert response.trial.catch_passed is True and response.trial.catch_score == 1.0
            assert all(CATCH_BOX[0] <= x <= CATCH_BOX[2] and CATCH_BOX[1] <= y <= CATCH_BOX[3] for x, y, _ in payload["clicks"])

    # The blur is a Gaussian of sigma 30 display px over mirrored borders
    label, pixels = checks["blur"]
    h, w = pixels.shape[:2]
    reference = blurred_reference(images[label], w, h, sigma=30 * w / 500)
    error = np.abs(pixels.astype(np.float64) - reference)
    assert error.mean() < 2.5 and np.percentile(error, 99) < 10, (error.mean(), np.percentile(error, 99))
    # One sharp bubble of radius 30 display px at the last click; the earlier bubbles closed again
    label, pixels, spots = checks["bubble"]
    sharp = np.asarray(Image.fromarray(images[label]).resize((w, h), Image.BILINEAR), dtype=np.float64)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    for k, (fx, fy) in enumerate(spots):
        d = np.hypot(xx - fx * w, yy - fy * h)
        inside, ring = d < 24, (d > 36) & (d < 60)
        if k == len(spots) - 1:
            assert np.abs(pixels[inside] - sharp[inside]).mean() < 4, "the last bubble is not sharp"
        else:
            assert np.abs(pixels[inside] - reference[inside]).mean() < 4, f"bubble {k} did not close"
        assert np.abs(pixels[ring] - reference[ring]).mean() < 4, "blur outside the bubble"


def test_mouse_contingent_viewing_samples_every_10_ms(live_server, make_study, chromium_path):
    study = make_study(task_kinds=["mouse"], participants_per_stimulus=3, stimuli_per_participant=2, launch=True,
                       task_params={"mouse": {"viewing_s": 1.5}})
    with chromium_page(chromium_path, **DESKTOP) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=mouse-1")
        page.check("#consent-box")
        page.click("#consent-submit")
        practice(page, "mouse", "mouse")
        for i in range(2):
            image_ready(page)
            label = page.inner_text("#label")
            box = reveal(page)
            mouse_circle(page, box, 0.35, 0.45, 0.1, 500)
            shot(page, f"mouse-5-trial-{i}")
            mouse_circle(page, box, 0.35, 0.45, 0.1, 1200)
            if i == 0:
                page.wait_for_function("document.getElementById('label').textContent !== %r" % label, timeout=15000)
        page.wait_for_url("**/done/", timeout=15000)
        shot(page, "mouse-6-done")

    participant = Participant.objects.get(study=study, external_id="mouse-1")
    assert participant.status == Participant.Status.COMPLETED
    responses = list(Response.objects.filter(trial__participant=participant).select_related("trial__stimulus"))
    assert len(responses) == 2
    for response in responses:
        stimulus, payload = response.trial.stimulus, response.payload
        samples = np.array(payload["samples"])
        assert len(samples) >= 60 and samples[:, 2].max() <= 1500, len(samples)
        dt = np.diff(samples[:, 2])
        assert 8 <= np.median(dt) <= 17, np.median(dt)
        # the pointer went round a circle of radius 0.1 (of the stage) about (0.35, 0.45)
        fx, fy = samples[:, 0] / stimulus.width, samples[:, 1] / stimulus.height
        radius = np.hypot(fx - 0.35, (fy - 0.45) * stimulus.height / stimulus.width / (stimulus.height / stimulus.width))
        assert np.percentile(np.abs(radius - 0.1), 90) < 0.02
        assert payload["window_radius"] == pytest.approx(30 * max(stimulus.width, stimulus.height) / 500, abs=0.01)
        assert payload["viewing_ms"] == 1500 and payload["sample_interval_ms"] == 10 and payload["pointer_types"] == ["mouse"]
