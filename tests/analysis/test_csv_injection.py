"""Every CSV the platform writes is safe to open in a spreadsheet (CSV/formula injection, OWASP):
text cells that would start a formula are neutralised with a leading quote, numbers stay numbers.

The rule itself (analysis/csv_cells.py) with plain values; then every CSV file and endpoint --
the report tables through the API and the dashboard, the raw responses through the API, the
dashboard and `export_responses`, the human-map export's manifest.csv in the zip (API, dashboard)
and in the folder `export_human_maps` writes -- for a study whose participant calls themselves
`=HYPERLINK("http://x")` and whose stimulus is named `+cmd`."""
import csv
import io
import zipfile

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analysis.csv_cells import csv_cell, csv_line, text_neutralised
from analysis.models import Score
from annotations.models import Participant, Stimulus

HOSTILE_ID = '=HYPERLINK("http://x")'
HOSTILE_NAME = "+cmd"


@pytest.mark.parametrize("text", [
    "=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "\nx", "\0x", " =1+1", "\u00a0=1", "\u3000@x", "＝1+1", "＋cmd",
    HOSTILE_ID,
])
def test_text_that_would_start_a_formula_gets_a_leading_quote(text):
    assert text_neutralised(text) == "'" + text
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["", "  ", "cat", "chelsea.png", "a=b", "x-1", "'quoted", "1-2", "2024-05-17T09:30:00+00:00", '{"a":-1}'])
def test_ordinary_text_is_left_alone(text):
    assert text_neutralised(text) == text


def test_numbers_stay_numbers_and_none_is_empty():
    assert csv_line([-0.12, -3, np.float64(-0.5), np.int64(-7), True, None, "-x"]) == "-0.12,-3,-0.5,-7,True,,'-x\n"
    assert csv_line([-0.123456789, float("nan")], number_format=lambda v: "" if v != v else f"{v:.3g}") == "-0.123,\n"


def test_a_neutralised_cell_reads_back_as_its_text_with_the_quote():
    line = csv_line([HOSTILE_ID, 'say "hi", then go', -1.5])
    assert next(csv.reader(io.StringIO(line))) == ["'" + HOSTILE_ID, 'say "hi", then go', "-1.5"]


# --- every CSV of a study --------------------------------------------------------------------------


def spreadsheet_safe(text: str) -> list[list[str]]:
    """The CSV's rows, checked: no cell starts a formula unless it is a number."""
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            if cell[:1] in set("\t\r\n\0") or cell.lstrip()[:1] in set("=+-@"):
                float(cell)  # raises for text: a formula a spreadsheet would run
    return rows


def cells(rows: list[list[str]]) -> set[str]:
    return {cell for row in rows for cell in row}


def negative_numbers(rows: list[list[str]]) -> list[float]:
    out = []
    for cell in cells(rows):
        try:
            value = float(cell)
        except ValueError:
            continue
        if value < 0:
            out.append(value)
    return out


@pytest.fixture
def hostile_study(scored_study):
    """The scored study, with a participant who answered named `=HYPERLINK(...)` and a main
    stimulus (with responses, maps and scores) named `+cmd`; one of its scores is -0.12."""
    chelsea = scored_study.stimuli.get(name="chelsea.png")
    Stimulus.objects.filter(pk=chelsea.pk).update(name=HOSTILE_NAME)
    person = Participant.objects.filter(study=scored_study, trials__stimulus=chelsea).first()
    Participant.objects.filter(pk=person.pk).update(external_id=HOSTILE_ID)
    Score.objects.filter(pk=Score.objects.filter(stimulus=chelsea, metric="pcc").first().pk).update(value=-0.12)
    return scored_study



@pytest.mark.django_db
def test_every_csv_endpoint_and_file_neutralises_text_and_keeps_numbers(hostile_study, client, tmp_path):
    slug = hostile_study.slug
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=hostile_study.owner)[0].key}")
    client.force_login(hostile_study.owner)

    def body(answer) -> bytes:
        assert answer.status_code == 200, answer.content[:500]
        return b"".join(answer.streaming_content) if answer.streaming else answer.content

    tables = {}
    for name in ("summary", "scores", "reliability", "reliability-stimuli", "curves"):
        from_api = body(api.get(reverse("api-study-table", args=[slug, name]))).decode()
        assert body(client.get(reverse("dashboard-table", args=[slug, name]))).decode() == from_api, name
        tables[name] = spreadsheet_safe(from_api)
    assert "'" + HOSTILE_NAME in cells(tables["scores"]) and "'" + HOSTILE_NAME in cells(tables["reliability-stimuli"])
    assert -0.12 in negative_numbers(tables["scores"])  # the platform's number, written as a number
    assert negative_numbers(tables["summary"]), "a mean score below zero is written as a number"

    call_command("export_responses", slug, "--out", str(tmp_path / "r.csv"), "--format", "csv")
    for text in (body(api.get(reverse("api-study-export-responses", args=[slug, "csv"]))).decode(),
                 body(client.get(reverse("dashboard-export-responses", args=[slug, "csv"]))).decode(),
                 (tmp_path / "r.csv").read_text()):
        rows = spreadsheet_safe(text)
        header = rows[0]
        ids = {row[header.index("external_id")] for row in rows[1:]}
        names = {row[header.index("stimulus")] for row in rows[1:]}
        assert "'" + HOSTILE_ID in ids and "'" + HOSTILE_NAME in names and HOSTILE_NAME not in names

    call_command("export_human_maps", slug, "--out", str(tmp_path / "maps"))
    manifests = [(tmp_path / "maps" / "manifest.csv").read_text()]
    for answer in (api.get(reverse("api-study-export-maps", args=[slug])), client.get(reverse("dashboard-export-maps", args=[slug]))):
        manifests.append(zipfile.ZipFile(io.BytesIO(body(answer))).read("manifest.csv").decode())
    for text in manifests:
        rows = spreadsheet_safe(text)
        names = {row[rows[0].index("name")] for row in rows[1:]}
        assert "'" + HOSTILE_NAME in names and HOSTILE_NAME not in names
