"""Run as a script (by test_layers.py): load the web app as gunicorn does, request every route of
every URL pattern as the owner of a launched study with an answered trial, and print what was
requested and whether torch (or another library the web process must not load) got imported.

Uses its own SQLite database (DATABASE_URL is set by the caller), so the parent test's database and
modules are untouched."""
from __future__ import annotations

import json
import os
import re
import sys
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings.test")

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import URLResolver, get_resolver  # noqa: E402

from studyserver.wsgi import application  # noqa: E402,F401  (what gunicorn loads)

FORBIDDEN = ("torch", "captum", "saliency", "lime")


def routes() -> list[str]:
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                found.append(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns, "")
    return found


def fill(route: str, values: dict) -> str:
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values.get(m.group(1), "x")), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), "1")), path)
    return "/" + path.replace("^", "").replace("$", "")


def main() -> None:
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from annotations.services import participation
    from studyserver.researcher.demo import demo_photo_bytes
    from studyserver.researcher.services import studies

    owner = get_user_model().objects.create_superuser(username=f"probe-{uuid.uuid4().hex[:6]}", password="pw")
    study = studies.study_create(owner=owner, title="probe", participants_per_stimulus=2, stimuli_per_participant=1)
    stimulus = studies.stimulus_create(study=study, data=demo_photo_bytes("chelsea.png"), filename="c.png", class_index=285)
    study = studies.study_launch(study=study)
    participant, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=participant)
    values = {"slug": study.slug, "stimulus_id": stimulus.pk, "token": participant.token, "trial_id": trial.pk,
              "username": owner.username, "task_kind": "paint", "job_id": 1, "name": "summary", "fmt": "csv",
              "position": 0, "object_id": "1", "app_label": "annotations", "url": "x/", "content_type_id": 1, "id": 1}
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    answers = {}
    for route in routes():
        path = fill(route, values)
        if path.endswith(("/delete/", "/logout/")):
            continue  # keep the study and the session for the routes after it
        response = client.get(path)
        answers[path] = response.status_code
    loaded = sorted({name.split(".")[0] for name in sys.modules} & set(FORBIDDEN))
    print(json.dumps({"requested": answers, "loaded": loaded}))


if __name__ == "__main__":
    main()
