"""Resuming a participant: an external id (PROLIFIC_PID, a lab's pid) alone proves nothing; the
browser that consented (its resume cookie), the participant's token, or the recruiter's session id
stored at consent do. Without proof: 409 `already_in_progress`, with no token and no data."""
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.models import Participant
from annotations.resume_cookie import resume_cookie_name
from annotations.services import participation
from studyserver.errors import Conflict
from tests.annotations.test_participation import answer_all, paint, tiny_study

pytestmark = pytest.mark.django_db


def consent(client, study, **ids):
    return client.post(reverse("study-entry", args=[study.slug]), {"consent": "yes", **ids})


def test_the_consent_sets_an_httponly_lax_resume_cookie_and_the_same_browser_resumes(researcher):
    study = tiny_study(researcher)
    browser = Client()
    first = consent(browser, study, PROLIFIC_PID="P-1")
    participant = Participant.objects.get(external_id="P-1")
    cookie = first.cookies[resume_cookie_name(study.slug)]
    assert cookie.value == participant.token and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/" and int(cookie["max-age"]) >= 7 * 86400 and not cookie["secure"]
    task = reverse("participant-task", args=[participant.token])
    # a reload of the Prolific link, the bare study link, a second consent: the same participant
    assert browser.get(reverse("study-entry", args=[study.slug]) + "?PROLIFIC_PID=P-1")["Location"] == task
    assert browser.get(reverse("study-entry", args=[study.slug]))["Location"] == task
    assert consent(browser, study, PROLIFIC_PID="P-1")["Location"] == task
    assert Participant.objects.count() == 1
    # over HTTPS the cookie is Secure
    secure = Client().post(reverse("study-entry", args=[study.slug]), {"consent": "yes", "PROLIFIC_PID": "P-2"}, secure=True)
    assert secure.cookies[resume_cookie_name(study.slug)]["secure"]


def test_a_second_browser_with_the_same_id_is_refused_and_learns_nothing(researcher):
    study = tiny_study(researcher)
    consent(Client(), study, PROLIFIC_PID="lab-7")
    participant = Participant.objects.get(external_id="lab-7")
    other = Client()
    url = reverse("study-entry", args=[study.slug])
    for answer in [other.get(url + "?pid=lab-7"), consent(other, study, pid="lab-7"),
                   consent(other, study, pid="lab-7", SESSION_ID="guess")]:
        assert answer.status_code == 409 and b"already in progress" in answer.content
        assert participant.token.encode() not in answer.content
        assert resume_cookie_name(study.slug) not in answer.cookies
    # a forged cookie (another participant's token, or junk) proves nothing either
    someone, _ = participation.participant_start(study=study)
    for value in [someone.token, participant.token + "x", "not a token!"]:
        other.cookies[resume_cookie_name(study.slug)] = value
        assert consent(other, study, pid="lab-7").status_code == 409
    assert Participant.objects.filter(external_id="lab-7").count() == 1


def test_prolific_relaunch_with_the_same_session_id_resumes_in_another_browser(researcher):
    study = tiny_study(researcher)
    consent(Client(), study, PROLIFIC_PID="P-5", STUDY_ID="st", SESSION_ID="sess-5")
    participant = Participant.objects.get(external_id="P-5")
    other = Client()
    link = reverse("study-entry", args=[study.slug]) + "?PROLIFIC_PID=P-5&STUDY_ID=st&SESSION_ID=sess-5"
    answer = other.get(link)
    assert answer["Location"] == reverse("participant-task", args=[participant.token])
    assert answer.cookies[resume_cookie_name(study.slug)].value == participant.token  # this browser may reload now
    assert Client().get(link.replace("sess-5", "sess-6")).status_code == 409


def test_a_completed_participant_with_proof_sees_their_done_page_without_it_the_refusal(researcher):
    study = tiny_study(researcher, stimuli_per_participant=1)
    browser = Client()
    consent(browser, study, PROLIFIC_PID="done-1")
    participant = Participant.objects.get(external_id="done-1")
    answer_all(participant, lambda t: paint((5, 5, 40, 40)))
    back = browser.get(reverse("study-entry", args=[study.slug]) + "?PROLIFIC_PID=done-1")
    assert browser.get(back["Location"])["Location"] == reverse("participant-done", args=[participant.token])
    refused = Client().get(reverse("study-entry", args=[study.slug]) + "?PROLIFIC_PID=done-1")
    assert refused.status_code == 409 and study.completion_code.encode() not in refused.content


def test_a_lab_computer_moves_on_to_the_next_id(researcher):
    """The browser's cookie proves only its own participant: the next person's id starts anew, and
    from then on the browser is the new participant's."""
    study = tiny_study(researcher, participants_per_stimulus=3)
    computer = Client()
    consent(computer, study, pid="lab-1")
    page = computer.get(reverse("study-entry", args=[study.slug]) + "?pid=lab-2")
    assert page.status_code == 200 and b'id="consent-box"' in page.content
    second = consent(computer, study, pid="lab-2")
    assert second["Location"] == reverse("participant-task", args=[Participant.objects.get(external_id="lab-2").token])
    # the browser now proves lab-2: one resume cookie per study and browser, the last consent's
    assert computer.get(reverse("study-entry", args=[study.slug]) + "?pid=lab-1").status_code == 409
    assert Participant.objects.count() == 2


def test_the_api_resumes_with_the_token_the_cookie_or_the_session_id(researcher):
    study = tiny_study(researcher)
    url = reverse("participant-start", args=[study.slug])
    api = APIClient()
    first = api.post(url, {"consent": True, "external_id": "A-1", "external_session_id": "s-1"}, format="json")
    assert first.status_code == 201
    token = first.json()["token"]
    assert api.post(url, {"consent": True, "external_id": "A-1"}, format="json").json()["token"] == token  # cookie
    stranger = APIClient()
    refused = stranger.post(url, {"consent": True, "external_id": "A-1"}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "already_in_progress"
    assert token not in refused.content.decode() and "token" not in refused.json()
    for proof in [{"token": token}, {"external_session_id": "s-1"}]:
        again = APIClient().post(url, {"consent": True, "external_id": "A-1", **proof}, format="json")
        assert again.status_code == 200 and again.json()["token"] == token and again.json()["created"] is False
    assert APIClient().post(url, {"consent": True, "external_id": "A-1", "token": "x" * 43}, format="json").status_code == 409
    assert Participant.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_browsers_consenting_with_one_id_at_the_same_moment(researcher):
    """The second consent waits on the first one's row (the unique external id) and then needs proof
    too: the same session id resumes, none is refused; never a second participant."""
    study = tiny_study(researcher)
    outcomes = {}

    def racer(name, session):
        try:
            participant, created = participation.participant_start(study=study, external_id="race", external_session_id=session)
            outcomes[name] = ("ok", participant.pk, created)
        except Conflict as exc:
            outcomes[name] = ("refused", exc.code)
        finally:
            connections.close_all()

    for name, session in [("same", "sess-r"), ("stranger", "")]:
        Participant.objects.filter(study=study).delete()
        with transaction.atomic():
            first, _ = participation.participant_start(study=study, external_id="race", external_session_id="sess-r")
            thread = threading.Thread(target=racer, args=(name, session))
            thread.start()
            deadline = time.monotonic() + 20
            with connection.cursor() as cursor:  # wait until the racer blocks on the unique index
                while True:
                    cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    if cursor.fetchone()[0] or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
            assert time.monotonic() <= deadline, "the second consent never waited on the first"
        thread.join(20)
        expected = ("ok", first.pk, False) if name == "same" else ("refused", "already_in_progress")
        assert outcomes[name] == expected
        assert Participant.objects.filter(study=study).count() == 1


def test_a_consent_made_before_the_resume_cookie_resumes_by_its_session(client, researcher):
    study = tiny_study(researcher)
    participant, _ = participation.participant_start(study=study, external_id="old-1")
    session = client.session
    session["participant_tokens"] = {study.slug: participant.token}  # where the consent page kept it then
    session.save()
    task = reverse("participant-task", args=[participant.token])
    assert client.get(reverse("study-entry", args=[study.slug]) + "?pid=old-1")["Location"] == task
    assert client.get(reverse("study-entry", args=[study.slug]))["Location"] == task
