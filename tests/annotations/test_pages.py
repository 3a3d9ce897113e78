import json
import re

import pytest
from django.urls import reverse

from annotations.models import Participant, Stimulus
from annotations.services import participation
from studyserver.researcher.services import studies
from tests.annotations.test_participation import answer_all, paint, tiny_study
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def test_consent_page_creates_participant_with_prolific_ids(client, make_study):
    study = make_study(launch=True)
    page = client.get(reverse("study-entry", args=[study.slug]) + "?PROLIFIC_PID=abc&STUDY_ID=s1&SESSION_ID=x9")
    assert page.status_code == 200 and study.consent_text[:30].encode() in page.content
    refused = client.post(reverse("study-entry", args=[study.slug]), {"PROLIFIC_PID": "abc"})
    assert refused.status_code == 400 and Participant.objects.count() == 0
    accepted = client.post(reverse("study-entry", args=[study.slug]), {"consent": "yes", "PROLIFIC_PID": "abc", "STUDY_ID": "s1", "SESSION_ID": "x9"})
    participant = Participant.objects.get()
    assert accepted.status_code == 302 and accepted["Location"] == reverse("participant-task", args=[participant.token])
    assert (participant.external_id, participant.external_study_id, participant.external_session_id) == ("abc", "s1", "x9")
    # Coming back to the study link resumes, it does not start again
    assert client.get(reverse("study-entry", args=[study.slug]))["Location"] == accepted["Location"]


def test_a_draft_answers_exactly_as_an_unknown_study_and_a_closed_one_says_it_closed(client, make_study):
    unknown = client.get("/s/nope/")
    draft = make_study()
    draft.title = "Secret unpublished title"
    draft.save(update_fields=["title"])
    for method in ("get", "post"):
        answers = [getattr(client, method)(reverse("study-entry", args=[slug]), {"consent": "yes"}) for slug in ("nope", draft.slug)]
        assert [a.status_code for a in answers] == [404, 404]
        assert answers[1].content.replace(draft.slug.encode(), b"nope") == answers[0].content
        assert [t.name for t in answers[1].templates] == [t.name for t in unknown.templates]
        assert b"Secret" not in answers[1].content
    draft = studies.study_launch(study=draft)
    studies.study_pause(study=draft)
    paused = client.get(reverse("study-entry", args=[draft.slug]))
    assert paused.status_code == 409 and b"paused by the researchers" in paused.content
    studies.study_close(study=draft)
    closed = client.get(reverse("study-entry", args=[draft.slug]))
    assert closed.status_code == 410 and b"This study has closed" in closed.content
    late = client.post(reverse("study-entry", args=[draft.slug]), {"consent": "yes", "PROLIFIC_PID": "late"})
    assert late.status_code == 410 and not Participant.objects.exists()


def test_dashboard_requires_login_and_shows_own_studies_only(client, make_study, django_user_model):
    study = make_study(launch=True)
    url = reverse("dashboard-study", args=[study.slug])
    assert client.get(url).status_code == 302
    other = django_user_model.objects.create_user("other", password="pw")
    client.force_login(other)
    assert client.get(url).status_code == 404
    client.force_login(study.owner)
    page = client.get(url)
    assert page.status_code == 200 and b"chelsea.png" in page.content
    stimulus = study.stimuli.first()
    assert client.get(reverse("dashboard-stimulus-png", args=[stimulus.pk]))["Content-Type"] == "image/png"


def test_admin_upload_of_a_non_image_is_a_form_error(client, make_study, django_user_model):
    from django.core.files.uploadedfile import SimpleUploadedFile

    admin = django_user_model.objects.create_superuser("boss", password="pw")
    client.force_login(admin)
    study = make_study(photos=())
    url = reverse("admin:annotations_stimulus_add")
    bad = client.post(url, {"study": study.pk, "upload": SimpleUploadedFile("x.png", b"not really a png"), "condition": "original", "role": "main"})
    assert bad.status_code == 200 and b"not a readable image" in bad.content
    assert Stimulus.objects.count() == 0
    import numpy as np

    good = client.post(url, {"study": study.pk, "upload": SimpleUploadedFile("g.png", png_bytes(np.zeros((20, 30, 3), np.uint8))), "label": "tabby", "condition": "original", "role": "main"})
    assert good.status_code == 302
    assert Stimulus.objects.get().class_index == 281


def _config(page) -> dict:
    match = re.search(rb'<script id="task-config" type="application/json">(.*?)</script>', page.content, re.S)
    return json.loads(match.group(1))


@pytest.mark.parametrize("kind,params,text", [
    ("paint", {"paint": {"time_limit_s": 40}}, b"You have 40 seconds for each image"),
    ("bubble", {}, b"Each image stays 10 seconds"),
    ("bubble", {"bubble": {"variant": "description"}}, b"at least 150 characters"),
    ("mouse", {"mouse": {"viewing_s": 4}}, b"blurred</strong> for 4 seconds"),
])
def test_task_page_explains_the_participants_task_kind(client, researcher, kind, params, text):
    study = tiny_study(researcher, task_kinds=[kind], task_params=params, instructions_text="Thanks for helping our lab.")
    participant, _ = participation.participant_start(study=study)
    page = client.get(reverse("participant-task", args=[participant.token]))
    assert page.status_code == 200 and text in page.content and b"Thanks for helping our lab." in page.content
    config = _config(page)
    assert config["taskKind"] == kind and config["practiceDone"] is False and config["resumed"] is False
    assert config["needsCalibration"] is False
    for script in (b"stage.js", b"paint.js", b"bubble.js", b"mouse.js", b"task.js"):
        assert script in page.content


def test_degree_studies_ask_for_the_calibration_first(client, researcher):
    study = tiny_study(researcher, task_params={"units": "deg"})
    participant, _ = participation.participant_start(study=study)
    page = client.get(reverse("participant-task", args=[participant.token]))
    assert _config(page)["needsCalibration"] is True and b'id="card"' in page.content


def test_done_page_shows_the_code_and_the_delayed_redirect(client, researcher):
    study = tiny_study(researcher, stimuli_per_participant=1, redirect_url="https://app.prolific.com/submissions/complete?cc=X",
                       task_params={"completion": {"redirect_delay_s": 3}})
    participant, _ = participation.participant_start(study=study)
    assert client.get(reverse("participant-done", args=[participant.token]))["Location"].endswith(f"/p/{participant.token}/")
    answer_all(participant, lambda t: paint((5, 5, 40, 40)))
    assert client.get(reverse("participant-task", args=[participant.token]))["Location"].endswith("/done/")
    page = client.get(reverse("participant-done", args=[participant.token]))
    assert study.completion_code.encode() in page.content and b"app.prolific.com" in page.content
    assert b'id="redirect-seconds">3<' in page.content


def test_a_full_study_says_so_at_consent_and_records_nobody(client, researcher):
    study = tiny_study(researcher, n_main=1, participants_per_stimulus=1, stimuli_per_participant=1)
    first, _ = participation.participant_start(study=study)
    participation.trial_next_assign(participant=first)
    answer = client.post(reverse("study-entry", args=[study.slug]), {"consent": "yes", "PROLIFIC_PID": "late"})
    assert answer.status_code == 410 and b"all the participants it needs" in answer.content
    assert not Participant.objects.filter(external_id="late").exists()


def test_a_finished_person_cannot_take_the_study_again(client, researcher):
    study = tiny_study(researcher, stimuli_per_participant=1)
    url = reverse("study-entry", args=[study.slug])
    client.post(url, {"consent": "yes", "PROLIFIC_PID": "P-9"})
    participant = Participant.objects.get(external_id="P-9")
    answer_all(participant, lambda t: paint((5, 5, 40, 40)))
    again = client.post(url, {"consent": "yes", "PROLIFIC_PID": "P-9"})  # their own browser: their done page
    assert again["Location"] == reverse("participant-task", args=[participant.token])
    assert client.get(again["Location"])["Location"] == reverse("participant-done", args=[participant.token])
    client.cookies.clear()  # another browser, same Prolific id: refused, nothing of theirs shown
    for answer in [client.get(url + "?PROLIFIC_PID=P-9"), client.post(url, {"consent": "yes", "PROLIFIC_PID": "P-9"})]:
        assert answer.status_code == 409 and b"already in progress" in answer.content
        assert participant.token.encode() not in answer.content and study.completion_code.encode() not in answer.content
    assert Participant.objects.filter(external_id="P-9").count() == 1


def test_admin_uploads_a_catch_stimulus_with_its_known_region(client, make_study, django_user_model):
    import numpy as np
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(django_user_model.objects.create_superuser("boss2", password="pw"))
    study = make_study(photos=())
    url = reverse("admin:annotations_stimulus_add")
    image = png_bytes(np.full((40, 60, 3), 90, np.uint8))
    form = {"study": study.pk, "label": "orange", "condition": "original", "role": "catch"}
    missing = client.post(url, {**form, "upload": SimpleUploadedFile("c.png", image)})
    assert missing.status_code == 200 and b"needs its known region" in missing.content
    outside = client.post(url, {**form, "upload": SimpleUploadedFile("c.png", image), "known_region": '{"boxes": [[0, 0, 99, 10]]}'})
    assert outside.status_code == 200 and b"outside the image" in outside.content
    assert Stimulus.objects.count() == 0
    good = client.post(url, {**form, "upload": SimpleUploadedFile("c.png", image), "known_region": '{"boxes": [[10, 5, 30, 25]]}'})
    assert good.status_code == 302
    assert Stimulus.objects.get().known_region == {"boxes": [[10.0, 5.0, 30.0, 25.0]], "polygons": []}
