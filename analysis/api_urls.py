"""Results through the REST API, version 1 (included under /api/v1/ by studyserver/urls.py, beside
annotations/api_urls.py; no path overlaps)."""
from django.urls import path

from . import result_apis as r

STUDY = "studies/<slug:slug>/"

urlpatterns = [
    path(STUDY + "results/", r.StudyResultsApi.as_view(), name="api-study-results"),
    path(STUDY + "results/tables/<str:name>.csv", r.StudyTableApi.as_view(), name="api-study-table"),
    path(STUDY + "results/figures/<str:name>.<str:fmt>", r.StudyFigureApi.as_view(), name="api-study-figure"),
    path(STUDY + "exports/human-maps.zip", r.StudyHumanMapsExportApi.as_view(), name="api-study-export-maps"),
    path(STUDY + "exports/responses.<str:fmt>", r.StudyResponsesExportApi.as_view(), name="api-study-export-responses"),
]
