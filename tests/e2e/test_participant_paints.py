"""A participant takes the study in headless Chromium (Debian's, driven by Playwright) with the mouse;
the worker averages the painted masks; the stored map has its mass where the strokes were."""
import numpy as np
import pytest

from analysis import services as analysis_services
from analysis.models import HumanMap
from annotations.models import Participant, Response
from tests.conftest import wait_for
from tests.e2e.browser import chromium_page, image_ready, paint_rectangle, shot
from tests.e2e.flows import practice

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def take_study(page, url: str, n_trials: int) -> str:
    """Consent, read the instructions, practise, paint the left part of each image, submit; the code."""
    page.goto(url)
    shot(page, "paint-1-consent")
    page.click("#consent-submit")
    assert page.locator("p.error").is_visible()  # consent box not ticked
    page.check("#consent-box")
    page.click("#consent-submit")
    practice(page, "paint", "paint")
    for i in range(n_trials):
        box = image_ready(page)
        page.click("#submit")  # nothing painted yet: refused in the page, nothing sent
        assert "Paint the parts" in page.inner_text("#status")
        paint_rectangle(page, box, 0.05, 0.1, 0.45, 0.9)
        assert page.inner_text("#status") == ""
        shot(page, f"paint-5-trial-{i}")
        label = page.inner_text("#label")
        page.click("#submit")
        if i < n_trials - 1:
            page.wait_for_function("document.querySelector('#label').textContent !== %r" % label)
    page.wait_for_url("**/done/")
    shot(page, "paint-6-done")
    assert page.get_attribute("#redirect", "href").startswith("https://app.prolific.com/")
    return page.inner_text("#completion-code")


# One worker serves both queues; insertion/deletion maps (tens of seconds each on a loaded machine)
# are not what this test is about and would queue the human-map updates behind them.
@pytest.mark.worker_env(EXPLAIN_FAITHFULNESS="0")
def test_participant_paints_and_the_averaged_map_follows_the_strokes(live_server, celery_worker_process, make_study, chromium_path):
    study = make_study(launch=True, redirect_url="https://app.prolific.com/submissions/complete?cc=TEST")
    url = f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=e2e-1&STUDY_ID=st&SESSION_ID=se"
    with chromium_page(chromium_path, viewport={"width": 1100, "height": 900}) as page:
        code = take_study(page, url, n_trials=2)
    assert code == study.completion_code

    participant = Participant.objects.get(study=study)
    assert participant.external_id == "e2e-1" and participant.status == "completed" and participant.practice_done_at
    assert Response.objects.filter(trial__participant=participant).count() == 2
    wait_for(lambda: HumanMap.objects.filter(stimulus__study=study, n_participants=1).count() == 2,
             timeout=60, what="both human maps", process=celery_worker_process)
    for human_map in HumanMap.objects.filter(stimulus__study=study):
        mean = analysis_services.human_map_mean(human_map)
        h, w = mean.shape
        # painted: the fraction [0.05, 0.45] x [0.1, 0.9] of the image, plus at most a brush radius
        inner = mean[int(0.2 * h): int(0.8 * h), int(0.12 * w): int(0.38 * w)]
        assert inner.mean() > 0.97, "the painted area is not in the map"
        assert mean[:, int(0.6 * w):].sum() == 0, "the map has mass where nothing was painted"
        assert mean[: int(0.02 * h), :].sum() == 0
        assert set(np.unique(mean)) <= {0.0, 1.0}
