"""Results through the REST API: the links index, every CSV table, figures, the human-map and raw
response exports, with a token, for owners and shared researchers; errors in the API's one shape."""
import csv
import io
import json
import zipfile

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Response, StudyShare

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _body(answer) -> bytes:
    return b"".join(answer.streaming_content) if answer.streaming else answer.content


def problem(answer, code):
    assert answer.status_code == code, answer.content
    body = answer.json()
    assert set(body) == {"error", "detail", "fields"} and body["detail"]
    return body


def test_every_result_comes_back_through_the_api(scored_study, django_user_model):
    colleague = django_user_model.objects.create_user(username="colleague")
    StudyShare.objects.create(study=scored_study, user=colleague, role="view")
    api = client_for(colleague)  # view access is enough to read results
    links = api.get(f"/api/v1/studies/{scored_study.slug}/results/").json()
    assert [t["name"] for t in links["tables"]] == ["summary", "scores", "reliability", "reliability-stimuli", "curves"]
    for table in links["tables"]:
        answer = api.get(table["url"], HTTP_ACCEPT="text/csv")
        assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv"), table["name"]
        assert list(csv.DictReader(io.StringIO(answer.content.decode()))), table["name"]
    summary = list(csv.DictReader(io.StringIO(api.get(links["tables"][0]["url"]).content.decode())))
    assert len(summary) == 12 and {"task_kind", "method", "condition", "pcc_mean"} <= set(summary[0])
    bars = next(f for f in links["figures"] if f["name"] == "bars-pcc")
    png, svg = api.get(bars["png"]), api.get(bars["svg"] + "?download=1")
    assert png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert svg["Content-Type"] == "image/svg+xml" and "attachment" in svg["Content-Disposition"]
    maps = api.get(links["exports"]["human_maps"]["npz"] + "&task_kind=paint", HTTP_ACCEPT="application/zip")
    archive = zipfile.ZipFile(io.BytesIO(_body(maps)))
    manifest = json.loads(archive.read("manifest.json"))
    assert {e["task_kind"] for e in manifest["entries"]} == {"paint"} and len(manifest["entries"]) == 5
    lines = _body(api.get(links["exports"]["responses"]["jsonl"])).decode().splitlines()
    assert len(lines) == Response.objects.filter(trial__stimulus__study=scored_study).count() == 32
    rows = list(csv.DictReader(io.StringIO(_body(api.get(links["exports"]["responses"]["csv"])).decode())))
    assert len(rows) == 32 and links["report_page"].endswith(f"/dashboard/studies/{scored_study.slug}/report/")


def test_bad_result_requests_are_named_and_others_studies_do_not_exist(make_study, django_user_model):
    study = make_study()
    owner = client_for(study.owner)
    base = f"/api/v1/studies/{study.slug}"
    assert "tables: summary, scores" in problem(owner.get(f"{base}/results/tables/nope.csv"), 404)["detail"]
    assert "use png or svg" in problem(owner.get(f"{base}/results/figures/bars-pcc.gif"), 400)["detail"]
    assert "no figure 'bars-nope'" in problem(owner.get(f"{base}/results/figures/bars-nope.png"), 404)["detail"]
    assert "use one of npy" in problem(owner.get(f"{base}/exports/human-maps.zip?format=tiff"), 400)["detail"]
    assert problem(owner.get(f"{base}/exports/human-maps.zip?task_kind=mouse"), 400)["fields"] == {"task_kind": ["unknown"]}
    assert "jsonl, csv" in problem(owner.get(f"{base}/exports/responses.xml"), 404)["detail"]
    empty = owner.get(f"{base}/results/tables/summary.csv")
    assert empty.status_code == 200 and empty.content.decode().startswith("model,")  # a header row, no data yet
    stranger = client_for(django_user_model.objects.create_user(username="stranger"))
    for path in ("results/", "results/tables/summary.csv", "results/figures/bars-pcc.png", "exports/human-maps.zip",
                 "exports/responses.jsonl"):
        problem(stranger.get(f"{base}/{path}"), 404)
        assert APIClient().get(f"{base}/{path}").status_code == 401
