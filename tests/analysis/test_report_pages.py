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


def _bounds_set(study, name, kind, metric, ceiling, floor):
    from analysis.models import HumanCeiling

    row = HumanCeiling.objects.get(stimulus__study=study, stimulus__name=name, task_kind=kind, metric=metric)
    row.ceiling, row.floor = ceiling, floor
    row.save()  # computed_at moves: the cached report is rebuilt


def test_undefined_normalised_scores_carry_their_reason_in_tables_api_page_and_figures(owner_client, scored_study):
    """The two coffee cases: ceiling 0.7996 over floor 0.7994 (a near-zero range), and a floor above
    the ceiling. Both give no normalised score and a stated reason, per stimulus and per summary row."""
    import matplotlib

    from analysis.models import Score

    slug = scored_study.slug
    _bounds_set(scored_study, "coffee.png", "paint", "pcc", 0.7996, 0.7994)
    _bounds_set(scored_study, "chelsea.png", "paint", "pcc", 0.844, 0.867)
    _bounds_set(scored_study, "chelsea-blur.png", "paint", "pcc", 0.7996, 0.7994)  # the only stimulus of its condition
    _bounds_set(scored_study, "astronaut.png", "paint", "sim", None, None)  # as with fewer than two participants
    scores = _csv(owner_client.get(reverse("dashboard-table", args=[slug, "scores"])))
    rows = {(r["stimulus"], r["method"]): r for r in scores if (r["task_kind"], r["metric"]) == ("paint", "pcc")}
    coffee, chelsea = rows[("coffee.png", "gradient")], rows[("chelsea.png", "gradient")]
    assert coffee["normalised"] == "" and coffee["normalised_note"].startswith("ceiling 0.7996 and floor 0.7994 differ by")
    assert chelsea["normalised"] == "" and chelsea["normalised_note"] == "ceiling 0.844 is not above floor 0.867"
    fine = rows[("astronaut.png", "gradcam")]
    assert fine["normalised"] and fine["normalised_note"] == ""
    unbounded = next(r for r in scores if (r["stimulus"], r["task_kind"], r["metric"]) == ("astronaut.png", "paint", "sim"))
    assert unbounded["normalised"] == "" and unbounded["normalised_note"] == "no human ceiling or floor"

    api = owner_client.get(reverse("api-study-scores", args=[slug])).json()
    group = next(g for g in api if (g["method"], g["task_kind"], g["metric"]) == ("gradient", "paint", "pcc"))
    values = {v["stimulus_name"]: v for v in group["values"]}
    assert values["coffee.png"]["normalised"] is None and "under 5%" in values["coffee.png"]["normalised_note"]
    assert values["coffee.png"]["ceiling"] == 0.7996 and values["coffee.png"]["value"] is not None
    assert values["astronaut.png"]["normalised"] is not None and values["astronaut.png"]["normalised_note"] == ""

    report = owner_client.get(reverse("dashboard-report", args=[slug]))
    blur = next(r for r in report.context["report"].rows
                if (r.task_kind, r.method_key, r.condition) == ("paint", "gradient", "gaussian_blur-3"))
    assert blur.normalised["pcc"].n == 1 and "under 5%" in blur.normalised["pcc"].note
    assert blur.metrics["pcc"].n == 1  # the raw score is still shown
    html = report.content.decode()
    assert "norm –: ceiling 0.7996 and floor 0.7994 differ by" in html
    assert "not possible: ceiling 0.7996 and floor 0.7994" in html  # the ceiling and floor table
    original = next(r for r in report.context["report"].rows
                    if (r.task_kind, r.method_key, r.condition) == ("paint", "gradcam", "original"))
    kept = Score.objects.filter(stimulus__study=scored_study, stimulus__condition="original", task_kind="paint", metric="pcc",
                                job__method_key="gradcam", value__isnull=False).count()
    assert original.normalised["pcc"].n == kept == 3  # coffee and chelsea still count in the means

    summary = {(r["task_kind"], r["method"], r["condition"]): r
               for r in _csv(owner_client.get(reverse("dashboard-table", args=[slug, "summary"])))}
    line = summary[("paint", "gradient", "gaussian_blur-3")]
    assert line["pcc_normalised_mean"] == "" and "under 5%" in line["pcc_normalised_note"]

    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text, to read it back
        svg = owner_client.get(reverse("dashboard-figure", args=[slug, "normalised-pcc", "svg"])).content.decode()
        bars = owner_client.get(reverse("dashboard-figure", args=[slug, "bars-pcc", "svg"])).content.decode()
    assert "n/a" in svg and "paint · gaussian_blur-3 (gradcam, gradient, rise): ceiling 0.7996 and floor 0.7994 differ by" in svg
    assert "paint · gaussian_blur-3: no normalised score, ceiling 0.7996" in bars
    png = owner_client.get(reverse("dashboard-figure", args=[slug, "normalised-pcc", "png"]))
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert "normalised-pcc" in html


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
