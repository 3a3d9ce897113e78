"""A study closing under its participants: nothing more is stored; whoever answered at least one trial
is shown the completion code (they did paid work) with a word that the study closed early; whoever
answered none gets no code and is asked to return the study. Nobody is marked completed by the close.
Progress gives no estimated completion for a closed or paused study."""
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotations import selectors
from annotations.models import Participant, Response
from annotations.services import participation
from studyserver.researcher import selectors as researcher_selectors
from studyserver.researcher.services import studies
from studyserver.researcher.templatetags.dashboard_tags import estimate_text
from tests.annotations.test_participation import answer_all, paint, submit, tiny_study

pytestmark = pytest.mark.django_db

REDIRECT = "https://app.prolific.com/submissions/complete?cc=CLOSED-TEST"


def three_participants(researcher):
    """A live study of K=2 with: `idle` holding an open trial and no answer, `halfway` with one answer
    and an open trial, `finished` done. Then the study is closed."""
    study = tiny_study(researcher, n_main=4, stimuli_per_participant=2, participants_per_stimulus=3, redirect_url=REDIRECT)
    idle, _ = participation.participant_start(study=study)
    participation.trial_next_assign(participant=idle)
    halfway, _ = participation.participant_start(study=study)
    submit(halfway, participation.trial_next_assign(participant=halfway), paint((5, 5, 40, 40)))
    participation.trial_next_assign(participant=halfway)
    finished, _ = participation.participant_start(study=study)
    answer_all(finished, lambda t: paint((5, 5, 40, 40)))
    study = studies.study_close(study=study)
    return study, *(Participant.objects.get(pk=p.pk) for p in (idle, halfway, finished))


def test_closing_completes_no_one_and_withholds_the_code_from_who_answered_nothing(researcher):
    study, idle, halfway, finished = three_participants(researcher)
    for participant in (idle, halfway):
        assert participation.trial_next_assign(participant=participant) is None  # the open trial is not resumed
        assert participation.participant_finish(participant=participant).status == Participant.Status.ACTIVE
        assert selectors.participant_closed_early(participant=participant)
    assert selectors.completion_code_get(participant=idle) is None
    assert selectors.completion_code_get(participant=halfway) == study.completion_code
    assert selectors.completion_code_get(participant=finished) == study.completion_code
    assert not selectors.participant_closed_early(participant=finished)
    assert Participant.objects.get(pk=finished.pk).status == Participant.Status.COMPLETED


def test_the_api_answers_done_closed_early_and_refuses_the_open_trial(researcher):
    study, idle, halfway, finished = three_participants(researcher)
    api = APIClient()
    open_trial = idle.trials.get().pk
    refused = api.post(reverse("participant-response", args=[idle.token, open_trial]),
                       {"client_uuid": str(uuid.uuid4()), "payload": paint((5, 5, 40, 40))}, format="json")
    assert refused.status_code == 410 and refused.json()["error"] == "study_closed"
    nothing = api.get(reverse("participant-trial-next", args=[idle.token])).json()
    assert nothing == {"done": True, "closed_early": True, "progress": {"done": 0, "total": 2}, "completion_code": None,
                       "completion_url": reverse("participant-done", args=[idle.token]), "redirect_url": ""}
    some = api.get(reverse("participant-trial-next", args=[halfway.token])).json()
    assert some["done"] and some["closed_early"] and some["progress"] == {"done": 1, "total": 2}
    assert some["completion_code"] == study.completion_code and some["redirect_url"] == REDIRECT
    whole = api.get(reverse("participant-trial-next", args=[finished.token])).json()
    assert whole["closed_early"] is False and whole["completion_code"] == study.completion_code
    assert set(Participant.objects.values_list("status", flat=True)) == {"active", "completed"}
    assert Response.objects.filter(trial__participant=idle).count() == 0


def test_the_pages_say_the_study_closed(researcher):
    study, idle, halfway, finished = three_participants(researcher)
    browser = Client()
    assert browser.get(reverse("participant-task", args=[idle.token]))["Location"] == reverse("participant-done", args=[idle.token])
    page = browser.get(reverse("participant-done", args=[idle.token]))
    assert page.status_code == 200 and b"The study has closed" in page.content and b"Return submission" in page.content
    assert study.completion_code.encode() not in page.content and b"app.prolific.com" not in page.content
    page = browser.get(reverse("participant-done", args=[halfway.token]))
    assert b"closed this study before you finished" in page.content and b"Your 1 answer is saved" in page.content
    assert study.completion_code.encode() in page.content and b"app.prolific.com" in page.content
    page = browser.get(reverse("participant-done", args=[finished.token]))
    assert b"All your answers are saved" in page.content and b"The study has closed" not in page.content


def test_progress_gives_no_estimated_completion_for_a_paused_or_closed_study(researcher):
    study = tiny_study(researcher, n_main=3, stimuli_per_participant=1, participants_per_stimulus=2)
    participant, _ = participation.participant_start(study=study)
    answer_all(participant, lambda t: paint((5, 5, 40, 40)))
    api = APIClient()
    api.force_authenticate(researcher)
    url = reverse("api-study-progress", args=[study.slug])
    live = api.get(url).json()
    assert live["estimate"]["seconds_left"] > 0 and live["estimate"]["completes_at"]
    for change, word in [(studies.study_pause, "Paused"), (studies.study_close, "Closed with 5 responses missing")]:
        study = change(study=study)
        estimate = api.get(url).json()["estimate"]
        assert estimate["seconds_left"] is None and estimate["completes_at"] is None
        assert estimate["remaining"] == 5 and estimate["responses_per_hour"] > 0  # the rate measured is still given
        assert estimate_text(researcher_selectors.study_progress(study=study)).startswith(word)
