"""The participant page keeps an answer it cannot save and sends it again until it is stored once.

Headless Chromium (Debian's, through Playwright). The network is simulated with Playwright's routing:
the first submits are answered 503 (as the server does when the database is unreachable), or fail
as connection errors; then they go through to the real server.
"""
import json

import pytest

from annotations.models import Participant, Response
from tests.e2e.browser import chromium_page, consent, image_ready, paint_rectangle, shot
from tests.e2e.flows import practice

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAILED_503 = 4  # 0.5 + 1 + 2 s quietly "Saving… retrying", then the message; the 5th attempt passes


def test_a_failed_submit_is_retried_with_the_same_uuid_and_survives_a_reload(live_server, transactional_db, make_study, chromium_path):
    study = make_study(launch=True)
    posted: list[dict] = []

    def flaky(route):
        posted.append(json.loads(route.request.post_data))
        if len(posted) <= FAILED_503:
            route.fulfill(status=503, content_type="application/json", headers={"Retry-After": "2"},
                          body=json.dumps({"error": "database_unavailable", "detail": "briefly unavailable", "fields": {}}))
        else:
            route.continue_()

    with chromium_page(chromium_path, viewport={"width": 1100, "height": 900}) as page:
        consent(page, f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=retry-1")
        practice(page, "paint", "retry")
        # Trial 1: four 503s, then the server is back.
        box = image_ready(page)
        paint_rectangle(page, box, 0.1, 0.1, 0.5, 0.8)
        label = page.inner_text("#label")
        page.route("**/response/", flaky)
        page.click("#submit")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('Saving… retrying')", timeout=5000)
        page.wait_for_function("document.getElementById('status').textContent.includes('Could not save')", timeout=15000)
        status = page.inner_text("#status")
        assert "check your connection; your drawing is kept" in status
        shot(page, "retry-1-could-not-save")
        pending = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('studyserver-pending-')).length")
        assert pending == 1  # kept for a reload
        page.wait_for_function("document.querySelector('#label').textContent !== %r" % label, timeout=20000)
        assert len(posted) == FAILED_503 + 1
        assert len({p["client_uuid"] for p in posted}) == 1 and len({json.dumps(p["payload"]) for p in posted}) == 1
        assert page.evaluate("localStorage.length") == 0
        page.unroute("**/response/")

        # Trial 2: the network is down; the participant reloads; the kept answer is sent after the reload.
        box = image_ready(page)
        paint_rectangle(page, box, 0.3, 0.2, 0.7, 0.9)
        page.route("**/response/", lambda route: route.abort("internetdisconnected"))
        page.click("#submit")
        page.wait_for_function("document.getElementById('status').textContent.includes('Could not save')", timeout=15000)
        kept = json.loads(page.evaluate("localStorage.getItem(Object.keys(localStorage)[0])"))
        page.unroute("**/response/")
        page.reload()
        page.wait_for_url("**/done/", timeout=20000)
        shot(page, "retry-2-done-after-reload")

    participant = Participant.objects.get(study=study, external_id="retry-1")
    stored = Response.objects.filter(trial__participant=participant)
    assert participant.status == "completed"
    assert stored.count() == 2 and Response.objects.count() == 2
    # each answer stored once, under the UUID the page kept retrying with
    assert {str(u) for u in stored.values_list("client_uuid", flat=True)} == {posted[0]["client_uuid"], kept["body"]["client_uuid"]}
