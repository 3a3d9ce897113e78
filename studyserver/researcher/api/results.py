"""Results through the REST API (v1): the report's tables, figures and the exports, for scripts.

The same bodies as the dashboard's report pages (`results.py`); access as every researcher endpoint
(`studyserver/researcher/selectors.py`: owner, shared edit or view, superuser; others get 404). Files
come back as files whatever the Accept header says; errors in the API's one shape.
"""
from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from analysis import exports, figures

from .. import result_files as results
from .. import selectors as selectors
from .studies import ResearcherApi, errors


class FileNegotiation(BaseContentNegotiation):
    """Files are not negotiated (an `Accept: text/csv` must not be a 406); errors render as JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FileApi(ResearcherApi):
    content_negotiation_class = FileNegotiation


def _binary(media_type: str, description: str) -> dict:
    return {(200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=description)}


class StudyResultsApi(ResearcherApi):
    """Where every result of the study is: the CSV tables, the figures, the exports (absolute URLs)."""

    @extend_schema(responses={200: inline_serializer("ResultLinks", {
        "scores": serializers.URLField(),
        "report_page": serializers.URLField(help_text="the dashboard's report (browser, session login)"),
        "tables": inline_serializer("TableLink", {"name": serializers.CharField(), "description": serializers.CharField(),
                                                  "url": serializers.URLField()}, many=True),
        "figures": inline_serializer("FigureLink", {"name": serializers.CharField(), "png": serializers.URLField(),
                                                    "svg": serializers.URLField()}, many=True),
        "exports": inline_serializer("ExportLinks", {
            "human_maps": serializers.DictField(child=serializers.URLField(), help_text="format -> zip"),
            "responses": serializers.DictField(child=serializers.URLField(), help_text="format -> file"),
        }),
    }), **errors(404)})
    def get(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug)
        url = request.build_absolute_uri
        return Response({
            "scores": url(reverse("api-study-scores", args=[study.slug])),
            "report_page": url(reverse("dashboard-report", args=[study.slug])),
            "tables": [{"name": name, "description": what, "url": url(reverse("api-study-table", args=[study.slug, name]))}
                       for name, what in results.TABLES.items()],
            "figures": [{"name": name, **{fmt: url(reverse("api-study-figure", args=[study.slug, name, fmt])) for fmt in figures.FORMATS}}
                        for name in results.figure_names()],
            "exports": {
                "human_maps": {fmt: url(reverse("api-study-export-maps", args=[study.slug])) + f"?format={fmt}" for fmt in exports.FORMATS},
                "responses": {fmt: url(reverse("api-study-export-responses", args=[study.slug, fmt])) for fmt in results.RESPONSE_FORMATS},
            },
        })


class StudyTableApi(FileApi):
    """A table of the report as CSV: summary, scores, reliability, reliability-stimuli or curves."""

    @extend_schema(responses={**_binary("text/csv", "the table, one header row"), **errors(404)})
    def get(self, request, slug: str, name: str):
        study = selectors.study_get(user=request.user, slug=slug)
        return results.table_response(study, name)


class StudyFigureApi(FileApi):
    """A figure of the report: bars-<metric> or curves-<pcc|sim>, as png or svg (?download=1: as an attachment)."""

    @extend_schema(responses={**_binary("image/png", "png or svg"), **errors(400, 404)})
    def get(self, request, slug: str, name: str, fmt: str):
        study = selectors.study_get(user=request.user, slug=slug)
        return results.figure_response(study, name, fmt, download=bool(request.query_params.get("download")))


class StudyHumanMapsExportApi(FileApi):
    """The human maps for training as a zip: one map per stimulus and task kind at stimulus
    resolution, binary fixation maps, the images, manifest.json and manifest.csv."""

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(exports.FORMATS), description="npy (default), npz or png"),
                    OpenApiParameter("task_kind", str, description="only this task kind")],
        responses={**_binary("application/zip", "the export"), **errors(400, 404)},
    )
    def get(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug)
        fmt, kind = request.query_params.get("format", "npy"), request.query_params.get("task_kind") or None
        return results.human_maps_response(study, fmt=fmt, task_kind=kind)


class StudyResponsesExportApi(FileApi):
    """Every raw response as stored, as JSONL or CSV (streamed)."""

    @extend_schema(responses={**_binary("application/x-ndjson", "jsonl or csv"), **errors(404)})
    def get(self, request, slug: str, fmt: str):
        study = selectors.study_get(user=request.user, slug=slug)
        return results.responses_response(study, fmt)
