"""The researcher's report, figures, tables and exports through Django's test client."""
import csv
import io
import json
import zipfile

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, scored_study):
    client.force_login(scored_study.owner)
    return client


def _csv(response):
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_pages_need_login_and_the_owner(client, scored_study, django_user_model):
    urls = [reverse("dashboard-report", args=[scored_study.slug]),
            reverse("dashboard-figure", args=[scored_study.slug, "bars-pcc", "png"]),
            reverse("dashboard-table", args=[scored_study.slug, "summary"]),
            reverse("dashboard-export-maps", args=[scored_study.slug]),
            reverse("dashboard-export-responses", args=[scored_study.slug, "jsonl"])]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    client.force_login(django_user_model.objects.create_user("someone-else", password="pw"))
    for url in urls:
        assert client.get(url).status_code == 404


def test_report_tables_per_kind_method_and_condition(owner_client, scored_study):
    page = owner_client.get(reverse("dashboard-report", args=[scored_study.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Task: paint", "Task: bubble", "gradcam", "rise (n_masks=4000)", "gaussian_blur-3", "Insertion AUC", "Human ceiling", "motorcycle_left.png"):
        assert text in html, text
    rows = page.context["report"].rows
    keys = {(r.task_kind, r.method_key, r.condition) for r in rows}
    assert ("bubble", "gradcam", "original") in keys and ("paint", "rise", "gaussian_blur-3") in keys
    by_key = {(r.task_kind, r.method_key, r.condition): r for r in rows}
    good, noise = by_key[("bubble", "gradcam", "original")], by_key[("bubble", "gradient", "original")]
    assert good.n_stimuli == 3 and good.metrics["pcc"].mean > noise.metrics["pcc"].mean
    assert good.metrics["pcc"].ci_low <= good.metrics["pcc"].mean <= good.metrics["pcc"].ci_high
    assert "auc_judd" in good.metrics and "auc_judd" not in by_key[("paint", "gradcam", "original")].metrics
    assert good.faithfulness["insertion"].n == 4  # every stimulus with the map, answered or not
    assert noise.faithfulness["insertion"].n == 0  # the gradient maps have no insertion AUC
    assert good.normalised["pcc"].n == 3


def test_summary_csv_matches_the_page(owner_client, scored_study):
    response = owner_client.get(reverse("dashboard-table", args=[scored_study.slug, "summary"]))
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    lines = _csv(response)
    line = next(r for r in lines if (r["task_kind"], r["method"], r["condition"]) == ("bubble", "gradcam", "original"))
    assert int(line["n_stimuli"]) == 3 and float(line["pcc_ci_low"]) <= float(line["pcc_mean"]) <= float(line["pcc_ci_high"])
    assert line["insertion_n"] == "4" and line["params"] == "default"
    assert len(lines) == 2 * 3 * 2  # kinds x methods x conditions


def test_every_table_downloads(owner_client, scored_study):
    for name in ("scores", "reliability", "reliability-stimuli", "curves"):
        lines = _csv(owner_client.get(reverse("dashboard-table", args=[scored_study.slug, name])))
        assert lines, name
    scores = _csv(owner_client.get(reverse("dashboard-table", args=[scored_study.slug, "scores"])))
    normalised = [r for r in scores if r["normalised"]]
    assert normalised and all(r["ceiling"] and r["floor"] for r in normalised)
    assert owner_client.get(reverse("dashboard-table", args=[scored_study.slug, "nope"])).status_code == 404


def test_figures_as_png_and_svg(owner_client, scored_study):
    for name in ("bars-pcc", "bars-auc_judd", "bars-insertion", "curves-pcc"):
        png = owner_client.get(reverse("dashboard-figure", args=[scored_study.slug, name, "png"]))
        assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        svg = owner_client.get(reverse("dashboard-figure", args=[scored_study.slug, name, "svg"]) + "?download=1")
        assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content[:500] and "attachment" in svg["Content-Disposition"]
    assert owner_client.get(reverse("dashboard-figure", args=[scored_study.slug, "bars-pcc", "gif"])).status_code == 400
    assert owner_client.get(reverse("dashboard-figure", args=[scored_study.slug, "bars-nope", "png"])).status_code == 404


def test_human_maps_zip(owner_client, scored_study):
    response = owner_client.get(reverse("dashboard-export-maps", args=[scored_study.slug]) + "?format=npz&task_kind=bubble")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert {e["task_kind"] for e in manifest["entries"]} == {"bubble"} and len(manifest["entries"]) == 5
    missing = [e for e in manifest["entries"] if not e["has_map"]]
    assert [e["name"] for e in missing] == ["motorcycle_left.png"] and missing[0]["map"] is None
    entry = next(e for e in manifest["entries"] if e["has_map"])
    assert entry["map"] in archive.namelist() and entry["image"] in archive.namelist() and "manifest.csv" in archive.namelist()
    assert owner_client.get(reverse("dashboard-export-maps", args=[scored_study.slug]) + "?format=tiff").status_code == 400
    assert owner_client.get(reverse("dashboard-export-maps", args=[scored_study.slug]) + "?task_kind=mouse").status_code == 400


def test_raw_responses_export(owner_client, scored_study):
    from annotations.models import Response

    jsonl = owner_client.get(reverse("dashboard-export-responses", args=[scored_study.slug, "jsonl"]))
    lines = [json.loads(line) for line in b"".join(jsonl.streaming_content).decode().splitlines()]
    assert len(lines) == Response.objects.filter(trial__stimulus__study=scored_study).count() == 32
    stored = Response.objects.get(pk=lines[0]["response_id"])
    assert lines[0]["payload"] == stored.payload and lines[0]["task_kind"] in ("paint", "bubble")
    table = owner_client.get(reverse("dashboard-export-responses", args=[scored_study.slug, "csv"]))
    rows = list(csv.DictReader(io.StringIO(b"".join(table.streaming_content).decode())))
    assert len(rows) == 32 and json.loads(rows[0]["payload"]) == stored.payload
    assert owner_client.get(reverse("dashboard-export-responses", args=[scored_study.slug, "xml"])).status_code == 404


def test_gallery_pages_and_region_images(owner_client, scored_study):
    page = owner_client.get(reverse("dashboard-study", args=[scored_study.slug]))
    html = page.content.decode()
    assert page.status_code == 200 and "no responses yet" in html and "top 10% / 30%" in html
    stimulus = scored_study.stimuli.get(name="coffee.png")
    from explain.models import ExplanationJob

    job = ExplanationJob.objects.get(image_sha256=stimulus.sha256, method_key="gradcam", status="done")
    for url in (reverse("dashboard-human-regions-png", args=[stimulus.pk, "bubble"]),
                reverse("dashboard-human-map-png", args=[stimulus.pk, "paint"]),
                reverse("dashboard-model-regions-png", args=[stimulus.pk, job.pk])):
        image = owner_client.get(url)
        assert image.status_code == 200 and image.content[:4] == b"\x89PNG"


def _published(callbacks) -> list[tuple[str, tuple]]:
    """(task name, args) of each publish queued on commit (studyserver.queueing's partials)."""
    return [(callback.args[0].name, tuple(callback.args[1])) for callback in callbacks]


def test_buttons_queue_work(owner_client, scored_study, django_capture_on_commit_callbacks):
    from analysis.models import HumanMap, ReliabilityRun

    slug, study = scored_study.slug, scored_study
    requested = dict(ReliabilityRun.objects.filter(study=study).values_list("task_kind", "requested"))
    with django_capture_on_commit_callbacks() as callbacks:
        assert owner_client.post(reverse("dashboard-reliability", args=[slug])).status_code == 302
    assert sorted(_published(callbacks)) == [("analysis.tasks.reliability_refresh", (study.pk, kind)) for kind in ("bubble", "paint")]
    after = dict(ReliabilityRun.objects.filter(study=study).values_list("task_kind", "requested"))
    assert after == {kind: n + 1 for kind, n in requested.items()}  # a run that finds work to do

    stale = HumanMap.objects.filter(stimulus__study=study, task_kind="paint").order_by("stimulus_id").first()
    stale.recipe = {**stale.recipe, "version": -1}  # made with another recipe than the study's: pending
    stale.save(update_fields=["recipe"])
    with django_capture_on_commit_callbacks() as callbacks:
        page = owner_client.post(reverse("dashboard-maps-refresh", args=[slug]), follow=True)
    assert _published(callbacks) == [("analysis.tasks.human_map_update", (stale.stimulus_id, "paint"))]
    assert "1 human map(s) queued" in page.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        assert owner_client.get(reverse("dashboard-reliability", args=[slug])).status_code == 405
    assert callbacks == []


def test_recipe_form_changes_the_sigma_and_refuses_nonsense(owner_client, scored_study):
    from analysis.models import MapRecipe

    url = reverse("dashboard-recipe", args=[scored_study.slug])
    report = owner_client.get(reverse("dashboard-report", args=[scored_study.slug])).content.decode()
    assert "Gaussian per click, sigma 25 screen px" in report and "binary paint mask" in report
    refused = owner_client.post(url, {"task_kind": "bubble", "sigma": "-3", "unit": "stimulus"}, follow=True)
    assert "between 0.5 and 2000" in refused.content.decode() and not MapRecipe.objects.exists()
    refused = owner_client.post(url, {"task_kind": "paint", "sigma": "10"}, follow=True)
    assert not MapRecipe.objects.exists() and "paint_mask" in refused.content.decode()
    owner_client.post(url, {"task_kind": "bubble", "sigma": "12", "unit": "stimulus"})
    assert MapRecipe.objects.get(study=scored_study, task_kind="bubble").recipe["sigma_px"] == 12.0
    page = owner_client.get(reverse("dashboard-report", args=[scored_study.slug])).content.decode()
    assert "sigma 12 stimulus px" in page and "out of date" in page  # the maps wait for their rebuild
