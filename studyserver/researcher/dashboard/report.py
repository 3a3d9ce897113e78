"""The researcher's report, figures, CSV tables and exports (login required; the study's owner and
the researchers it is shared with).

Each handler: parse -> one selector or service -> respond. Unknown names or formats are a 404/400
naming the valid ones; nothing is computed for them. The bodies come from `results.py`, which the
REST API serves too.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from analysis import selectors as analysis_selectors
from analysis import services
from analysis.report_tables import FAITHFULNESS, METRIC_LABELS
from analysis.scoring import ALL_METRICS
from studyserver.errors import DomainError, NotFound

from .. import result_files as results
from ..result_files import CURVE_METRICS, TABLES
from .access import study_or_404


def _kind_rows(report: analysis_selectors.StudyReport) -> list[tuple[str, list]]:
    return [(kind, [r for r in report.rows if r.task_kind == kind]) for kind in report.study.task_kinds]


@login_required
def report(request, slug: str):
    study = study_or_404(request, slug)
    data = analysis_selectors.study_report(study)
    metrics_shown = [m for m in ALL_METRICS if any(m in r.metrics for r in data.rows)] or list(ALL_METRICS[:6])
    context = {
        "study": study,
        "report": data,
        "kind_rows": _kind_rows(data),
        "metrics_shown": [(m, METRIC_LABELS[m]) for m in metrics_shown],
        "faithfulness": [(m, METRIC_LABELS[m]) for m in FAITHFULNESS],
        "figure_metrics": [(m, METRIC_LABELS[m]) for m in metrics_shown + list(FAITHFULNESS)],
        "normalised_metrics": metrics_shown,
        "curve_metrics": [(m, METRIC_LABELS[m]) for m in CURVE_METRICS],
        "tables": TABLES,
        "pending": len(services.maps_pending(study=study)),
        "can_edit": study.access != "view",
    }
    return render(request, "researcher/report.html", context)


def _result(produce):
    """The response `produce()` makes; NotFound -> 404, other domain errors -> 400 naming the problem."""
    try:
        return produce()
    except NotFound as exc:
        raise Http404(exc.message) from None
    except DomainError as exc:
        return HttpResponseBadRequest(exc.message, content_type="text/plain")


@login_required
def figure(request, slug: str, name: str, fmt: str):
    study = study_or_404(request, slug)
    return _result(lambda: results.figure_response(study, name, fmt, download=bool(request.GET.get("download"))))


@login_required
def table_csv(request, slug: str, name: str):
    study = study_or_404(request, slug)
    return _result(lambda: results.table_response(study, name))


@login_required
def human_maps_zip(request, slug: str):
    """The export of `manage.py export_human_maps` as a zip (?format=npy|png|npz, ?task_kind=)."""
    study = study_or_404(request, slug)
    fmt, kind = request.GET.get("format", "npy"), request.GET.get("task_kind") or None
    return _result(lambda: results.human_maps_response(study, fmt=fmt, task_kind=kind))


@login_required
def responses_export(request, slug: str, fmt: str):
    study = study_or_404(request, slug)
    return _result(lambda: results.responses_response(study, fmt))


@login_required
@require_POST
def reliability_recompute(request, slug: str):
    study = study_or_404(request, slug, need="edit")
    for kind in study.task_kinds:
        services.reliability_request(study_id=study.pk, task_kind=kind)
    messages.success(request, "Reliability is being brought up to date (stimuli whose data changed); the tables update when it is done.")
    return HttpResponseRedirect(reverse("dashboard-report", args=[slug]))


@login_required
@require_POST
def recipe_set(request, slug: str):
    """Change the Gaussian sigma of a points task kind; every map of that kind is rebuilt."""
    study = study_or_404(request, slug, need="edit")
    kind, unit = request.POST.get("task_kind", ""), request.POST.get("unit", "display")
    try:
        sigma = float(request.POST.get("sigma", ""))
    except ValueError:
        sigma = float("nan")
    key = "sigma_px" if unit == "stimulus" else "sigma_display_px"
    try:
        services.human_map_recipe_set(study=study, task_kind=kind, recipe={"kind": "gaussian_points", key: sigma})
        messages.success(request, f"{kind}: recipe changed; its human maps are being rebuilt and rescored.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("dashboard-report", args=[slug]))


@login_required
@require_POST
def maps_refresh(request, slug: str):
    study = study_or_404(request, slug, need="edit")
    queued = services.maps_pending_queue(study=study)
    messages.success(request, f"{queued} human map(s) queued for an update or rebuild.")
    return HttpResponseRedirect(reverse("dashboard-report", args=[slug]))
