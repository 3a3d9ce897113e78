"""Refusals of the stimulus upload, zip and corruption endpoints (and the dashboard's uploads): every
answer has the documented shape {"error", "detail", "fields": {field: [problems]}}, flat, a problem
inside a list naming its index, and says what is wrong in plain words -- never a Python object repr."""
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.corruptions import CORRUPTIONS
from annotations.models import Stimulus
from studyserver.errors import InvalidInput
from studyserver.researcher.services import studies
from tests.annotations.zipfiles import csv_bytes, make_zip, photo_zip, png, writestr_zip

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4 a paper, not a picture"
TRUNCATED_PNG = png()[:200]


@pytest.fixture
def api(researcher) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=researcher)[0].key}")
    return client


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def refused(answer, code=400) -> dict:
    """The answer's body, checked: the status, the one error shape, flat fields, no object reprs."""
    assert answer.status_code == code, answer.content
    assert "object at 0x" not in answer.content.decode(), answer.content
    body = answer.json()
    assert set(body) == {"error", "detail", "fields"} and body["detail"], body
    assert all(isinstance(field, str) and isinstance(problems, list) and problems for field, problems in body["fields"].items()), body
    assert all(isinstance(problem, str) for problems in body["fields"].values() for problem in problems), body["fields"]
    return body


SINGLE_UPLOADS = {
    "pdf named .pdf": ({"image": ("paper.pdf", PDF)}, "paper.pdf: the file is not a readable image"),
    "pdf named .png": ({"image": ("cat.png", PDF)}, "cat.png: the file is not a readable image (its format is not recognised"),
    "truncated png": ({"image": ("cut.png", TRUNCATED_PNG)}, "cut.png: the file is not a readable image"),
    "empty file": ({"image": ("empty.png", b"")}, "empty"),
    "no file": ({"image": "not a file"}, "image"),
}


@pytest.mark.parametrize("case", sorted(SINGLE_UPLOADS))
def test_refused_single_uploads_are_plain_words(api, make_study, case):
    study = make_study()
    fields, text = SINGLE_UPLOADS[case]
    body = {key: _named(value[1], value[0]) if isinstance(value, tuple) else value for key, value in fields.items()}
    answer = refused(api.post(reverse("api-stimuli", args=[study.slug]), body, format="multipart"))
    assert text in answer["detail"], answer


ZIP_UPLOADS = {
    "a listed pdf": (lambda: photo_zip(extra_rows=["paper.png,1,,"], extra_members={"paper.png": PDF}),
                     "paper.png: the file is not a readable image (its format is not recognised"),
    "a truncated png in a writestr zip": (lambda: writestr_zip({"a.png": TRUNCATED_PNG, "labels.csv": csv_bytes("a.png,1,,")}),
                                          "a.png: the file is not a readable image"),
    "not a zip": (lambda: PDF, "not a readable zip archive"),
    "labels not text": (lambda: make_zip({"a.png": png(), "labels.csv": b"\xff\xfe\x00garbage"}), "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(ZIP_UPLOADS))
def test_refused_zip_uploads_are_plain_words(api, make_study, case):
    study = make_study()
    build, text = ZIP_UPLOADS[case]
    answer = api.post(reverse("api-stimuli-zip", args=[study.slug]), {"archive": _named(build(), "s.zip")}, format="multipart")
    body = refused(answer)
    assert text in body["detail"], body
    assert study.stimuli.count() == 2  # make_study's two photos, nothing added


def test_a_zip_written_by_python_writestr_is_accepted_through_the_api(api, make_study):
    study = make_study(photos=())
    data = writestr_zip({"images/a.png": png(seed=1), "labels.csv": csv_bytes("images/a.png,1,,")})
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("images/a.png").external_attr >> 16 == 0o600  # no type bits
    answer = api.post(reverse("api-stimuli-zip", args=[study.slug]), {"archive": _named(data, "s.zip")}, format="multipart")
    assert answer.status_code == 201, answer.content
    assert [s["name"] for s in answer.json()] == ["a.png"]


VALID = ", ".join(CORRUPTIONS)
VARIANT_REQUESTS = [
    ({"corruptions": ["x"], "severities": [1]},
     {"corruptions": [f"corruptions[0]: unknown corruption 'x'; valid: {VALID}"]}),
    ({"corruptions": ["contrast", "fog"], "severities": [1, 9, "a"]},
     {"corruptions": [f"corruptions[1]: unknown corruption 'fog'; valid: {VALID}"],
      "severities": ["severities[1]: severity must be one of 1, 2, 3, 4, 5; got 9",
                     "severities[2]: severity must be one of 1, 2, 3, 4, 5; got 'a'"]}),
    ({"corruptions": ["contrast"], "severities": [1], "sources": ["one"]},
     {"sources": ["sources[0]: A valid integer is required."]}),
    ({"corruptions": "contrast", "severities": []},
     {"corruptions": ['Expected a list of items but got type "str".'], "severities": ["Ensure this field has at least 1 elements."]}),
    ({"corruptions": ["contrast"], "severities": [1], "seed": -1},
     {"seed": ["Ensure this value is greater than or equal to 0."]}),
]


@pytest.mark.parametrize("body,fields", VARIANT_REQUESTS)
def test_the_corruption_endpoint_names_each_bad_item_by_its_index_in_flat_fields(api, make_study, body, fields):
    study = make_study()
    answer = refused(api.post(reverse("api-stimulus-variants", args=[study.slug]), body, format="json"))
    assert answer["fields"] == fields
    for problem in sum(fields.values(), []):
        assert problem in answer["detail"]  # every problem is in the detail, not only the first
    assert study.stimuli.count() == 2


def test_the_variants_service_names_the_field_and_index_of_each_problem(make_study):
    study = make_study()
    with pytest.raises(InvalidInput) as info:
        studies.stimulus_variants_create(study=study, corruptions=["contrast", "fog"], severities=[6], seed=0)
    assert info.value.fields == {
        "corruptions": [f"corruptions[1]: unknown corruption 'fog'; valid: {VALID}"],
        "severities": ["severities[0]: severity must be one of 1, 2, 3, 4, 5; got 6"],
    }
    with pytest.raises(InvalidInput) as info:
        studies.stimulus_variants_create(study=study, corruptions=[], severities=[], seed=0)
    assert set(info.value.fields) == {"corruptions", "severities"}


def test_the_dashboard_says_a_refused_upload_in_plain_words(client, researcher, make_study):
    study = make_study()
    client.force_login(researcher)
    upload = reverse("dashboard-stimuli-upload", args=[study.slug])
    page = client.post(upload, {"image": SimpleUploadedFile("paper.png", PDF), "role": "main"}, follow=True).content.decode()
    assert "paper.png: the file is not a readable image (its format is not recognised" in page
    archive = photo_zip(extra_rows=["paper.png,1,,"], extra_members={"paper.png": PDF})
    page = client.post(upload, {"archive": SimpleUploadedFile("s.zip", archive)}, follow=True).content.decode()
    assert "paper.png: the file is not a readable image" in page
    assert "object at 0x" not in page and Stimulus.objects.filter(study=study).count() == 2


def test_an_upload_over_the_size_limit_is_413_naming_its_field(api, make_study, settings):
    study = make_study()
    settings.STIMULUS_MAX_BYTES, settings.STIMULUS_ZIP_MAX_BYTES = 1000, 1000
    data = png(64, 64)
    body = refused(api.post(reverse("api-stimuli", args=[study.slug]), {"image": _named(data, "big.png")}, format="multipart"), 413)
    assert body["fields"] == {"image": [f"big.png is {len(data)} bytes; the limit is 1000 bytes"]}
    archive = make_zip({"a.png": data, "labels.csv": csv_bytes("a.png,1,,")})
    body = refused(api.post(reverse("api-stimuli-zip", args=[study.slug]), {"archive": _named(archive, "s.zip")}, format="multipart"), 413)
    assert list(body["fields"]) == ["archive"] and "s.zip is" in body["fields"]["archive"][0]
