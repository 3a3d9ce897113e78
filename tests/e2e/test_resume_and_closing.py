"""In headless Chromium: a second browser with the same PROLIFIC_PID is refused while the first one
resumes; a study closed under its participants ends their page on a "the study has closed" screen,
with the completion code for the one who answered a trial and without it for the one who had not."""
import json
import urllib.request

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotations.models import Participant, Response
from annotations.services import participation
from tests.annotations.test_participation import paint, submit, tiny_study
from tests.e2e.browser import chromium_pages, consent, image_ready, paint_rectangle, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REDIRECT = "https://app.prolific.com/submissions/complete?cc=CLOSED-E2E"


def test_a_second_browser_with_the_same_prolific_id_is_refused_and_the_first_resumes(live_server, researcher, chromium_path):
    study = tiny_study(researcher)
    link = f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=twin&STUDY_ID=st&SESSION_ID=sess-a"
    with chromium_pages(chromium_path, 2, viewport={"width": 1000, "height": 800}) as (first, second):
        consent(first, link)
        first.wait_for_selector("#instructions:not([hidden])")
        task_url = first.url
        assert "/p/" in task_url
        second.goto(link.replace("sess-a", "sess-b"))
        assert second.locator("#in-progress").is_visible()
        assert "already in progress" in second.inner_text("#in-progress")
        token = task_url.rstrip("/").rsplit("/", 1)[-1]
        assert token not in second.content() and not second.context.cookies()
        shot(second, "resume-refused")
        second.goto(f"{live_server.url}/s/{study.slug}/?PROLIFIC_PID=twin")  # the id alone, no session id
        assert second.locator("#in-progress").is_visible()
        first.goto(link)  # the first browser opens the Prolific link again: straight back to its page
        first.wait_for_selector("#instructions:not([hidden])")
        assert first.url == task_url
        first.goto(f"{live_server.url}/s/{study.slug}/")
        assert first.url == task_url
    assert Participant.objects.filter(study=study).count() == 1


def _post(url: str, key: str) -> dict:
    request = urllib.request.Request(url, data=b"", method="POST", headers={"Authorization": f"Token {key}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_a_study_closed_under_two_participants_shows_each_the_closed_screen(live_server, researcher, chromium_path):
    study = tiny_study(researcher, n_main=4, stimuli_per_participant=2, participants_per_stimulus=3, redirect_url=REDIRECT)
    idle, _ = participation.participant_start(study=study)
    halfway, _ = participation.participant_start(study=study)
    submit(halfway, participation.trial_next_assign(participant=halfway), paint((5, 5, 40, 40)))
    Participant.objects.filter(pk__in=[idle.pk, halfway.pk]).update(practice_done_at=timezone.now())
    participation.trial_next_assign(participant=idle)
    key = Token.objects.create(user=researcher).key
    with chromium_pages(chromium_path, 2, viewport={"width": 1000, "height": 800}) as (a, b):
        boxes = []
        for page, who in [(a, idle), (b, halfway)]:
            page.goto(f"{live_server.url}/p/{who.token}/")
            boxes.append(image_ready(page))
        assert _post(f"{live_server.url}/api/v1/studies/{study.slug}/close/", key)["status"] == "closed"
        for page, box in zip((a, b), boxes):
            paint_rectangle(page, box, 0.1, 0.1, 0.6, 0.8)
            page.click("#submit")  # the answer is refused (410 study_closed): the page moves on
            page.wait_for_url("**/done/")
            assert page.inner_text("h1") == "The study has closed"
        shot(a, "closed-no-answer")
        shot(b, "closed-one-answer")
        text = a.inner_text("#closed-early")
        assert "no completion code" in text and "Return submission" in text and study.completion_code not in text
        assert a.locator("#redirect").count() == 0 and a.locator("#completion-code").count() == 0
        assert "closed this study before you finished" in b.inner_text("#closed-early")
        assert b.inner_text("#completion-code") == study.completion_code
        assert b.get_attribute("#redirect", "href") == REDIRECT
    assert set(Participant.objects.filter(pk__in=[idle.pk, halfway.pk]).values_list("status", flat=True)) == {"active"}
    assert Response.objects.filter(trial__participant__study=study).count() == 1
