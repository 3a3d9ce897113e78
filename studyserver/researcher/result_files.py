"""A study's results as HTTP responses: CSV tables, figures and exports, shared by the dashboard
(`dashboard/report.py`, session login) and the REST API (`api/results.py`, token or session).

Unknown names or formats raise NotFound or InvalidInput naming the valid ones; nothing is computed
for them. The caller has already checked that the user may see the study.
"""
from __future__ import annotations

import tempfile
import zipfile

from django.http import FileResponse, HttpResponse, StreamingHttpResponse

from analysis import exports, figures, report_tables
from analysis import selectors as analysis_selectors
from analysis.report_tables import FAITHFULNESS, METRIC_LABELS
from analysis.scoring import ALL_METRICS
from annotations.models import Study
from explain.method_catalogue import method_defaults
from studyserver.errors import InvalidInput, NotFound

FIGURE_METRICS = ALL_METRICS + FAITHFULNESS
CURVE_METRICS = ("pcc", "sim")
TABLES = {
    "summary": "one line per model x method x params x task kind x condition: every metric's mean, std, 95% CI, "
               "normalised (empty, with a note, where the ceiling is not better than the floor by the margin)",
    "scores": "every score of every stimulus, with the stimulus' ceiling, floor and normalised score (or the reason it has none)",
    "reliability": "the study's ceiling and floor per task kind, condition and metric, with a note where they cannot normalise",
    "reliability-stimuli": "every stimulus' ceiling and floor per metric",
    "curves": "every stimulus' split-half reliability at k participants per half",
}
RESPONSE_FORMATS = ("jsonl", "csv")


def figure_names() -> list[str]:
    return ([f"bars-{m}" for m in FIGURE_METRICS] + [f"normalised-{m}" for m in ALL_METRICS]
            + [f"curves-{m}" for m in CURVE_METRICS])


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def table_response(study: Study, name: str) -> HttpResponse:
    if name not in TABLES:
        raise NotFound(f"no table {name!r}; tables: {', '.join(TABLES)}")
    if name == "summary":
        body = report_tables.summary_csv(analysis_selectors.study_report(study).rows)
    elif name == "reliability":
        body = report_tables.reliability_csv(analysis_selectors.study_report(study).reliability)
    elif name == "scores":
        body = analysis_selectors.per_stimulus_scores_csv(study)
    elif name == "reliability-stimuli":
        body = analysis_selectors.per_stimulus_reliability_csv(study)
    else:
        body = report_tables.curves_csv(analysis_selectors.curve_records(study))
    return _attachment(HttpResponse(body, content_type="text/csv; charset=utf-8"), f"{study.slug}-{name}.csv")


def figure_response(study: Study, name: str, fmt: str, *, download: bool = False) -> HttpResponse:
    """bars-<metric> (mean and CI per method, task kind and condition), normalised-<metric> (the
    normalised score; a marked gap and the reason where undefined) or curves-<pcc|sim>, png or svg."""
    if fmt not in figures.FORMATS:
        raise InvalidInput(f"unknown figure format {fmt!r}; use png or svg", fields={"format": ["png or svg"]})
    kind, _, metric = name.partition("-")
    data = analysis_selectors.study_report(study)
    if kind == "bars" and metric in FIGURE_METRICS:
        body = figures.metric_bars(data.rows, metric, data.reliability, fmt, title=f"{study.title}: {METRIC_LABELS[metric]}",
                                   method_defaults=method_defaults())
    elif kind == "normalised" and metric in ALL_METRICS:
        body = figures.normalised_bars(data.rows, metric, fmt, title=f"{study.title}: normalised {METRIC_LABELS[metric]}",
                                       method_defaults=method_defaults())
    elif kind == "curves" and metric in CURVE_METRICS:
        body = figures.reliability_curves(data.curves, analysis_selectors.curve_records(study), metric, fmt)
    else:
        raise NotFound(f"no figure {name!r}: bars-<metric> ({', '.join(FIGURE_METRICS)}), normalised-<metric> "
                       f"({', '.join(ALL_METRICS)}) or curves-<{'|'.join(CURVE_METRICS)}>")
    response = HttpResponse(body, content_type=figures.FORMATS[fmt])
    return _attachment(response, f"{study.slug}-{name}.{fmt}") if download else response


def human_maps_response(study: Study, *, fmt: str = "npy", task_kind: str | None = None) -> FileResponse:
    """The export of `manage.py export_human_maps` as a zip (maps, fixations, images, manifests)."""
    if fmt not in exports.FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; use one of {', '.join(exports.FORMATS)}", fields={"format": ["unknown"]})
    if task_kind is not None and task_kind not in study.task_kinds:
        raise InvalidInput(f"study {study.slug} has no task kind {task_kind!r}", fields={"task_kind": ["unknown"]})
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    with zipfile.ZipFile(spool, "w") as archive:
        exports.human_maps_export(study, exports.ZipSink(archive), fmt=fmt, task_kind=task_kind)
    spool.seek(0)
    suffix = f"-{task_kind}" if task_kind else ""
    return FileResponse(spool, as_attachment=True, filename=f"{study.slug}-human-maps{suffix}-{fmt}.zip",
                        content_type="application/zip")


def responses_response(study: Study, fmt: str) -> StreamingHttpResponse:
    """Every raw response as stored (JSONL or CSV), streamed."""
    if fmt == "jsonl":
        response = StreamingHttpResponse(exports.responses_jsonl(study), content_type="application/x-ndjson")
    elif fmt == "csv":
        response = StreamingHttpResponse(exports.responses_csv(study), content_type="text/csv; charset=utf-8")
    else:
        raise NotFound(f"responses export formats: {', '.join(RESPONSE_FORMATS)}")
    return _attachment(response, f"{study.slug}-responses.{fmt}")
