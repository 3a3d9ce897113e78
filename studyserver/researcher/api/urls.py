"""Researcher REST API, version 1 (included under /api/v1/ by studyserver/urls.py): studies and
their lifecycle, stimuli, results and exports.

The participant endpoints (consent, next trial, response, trial image) live under the same prefix in
annotations/urls.py; no path here overlaps theirs.
"""
from django.urls import path

from . import results
from . import stimuli as s
from . import studies as r

STUDY = "studies/<slug:slug>/"
STIMULUS = STUDY + "stimuli/<int:stimulus_id>/"

urlpatterns = [
    path("auth/token/", r.AuthTokenApi.as_view(), name="api-token"),
    path("auth/token/revoke/", r.AuthTokenRevokeApi.as_view(), name="api-token-revoke"),
    path("explain/options/", r.ExplainOptionsApi.as_view(), name="api-explain-options"),
    path("corruptions/", s.CorruptionsApi.as_view(), name="api-corruptions"),
    path("studies/", r.StudiesApi.as_view(), name="api-studies"),
    path(STUDY, r.StudyApi.as_view(), name="api-study"),
    path(STUDY + "launch/", r.StudyLaunchApi.as_view(), name="api-study-launch"),
    path(STUDY + "pause/", r.StudyPauseApi.as_view(), name="api-study-pause"),
    path(STUDY + "resume/", r.StudyResumeApi.as_view(), name="api-study-resume"),
    path(STUDY + "close/", r.StudyCloseApi.as_view(), name="api-study-close"),
    path(STUDY + "archive/", r.StudyArchiveApi.as_view(), name="api-study-archive"),
    path(STUDY + "restore/", r.StudyRestoreApi.as_view(), name="api-study-restore"),
    path(STUDY + "clone/", r.StudyCloneApi.as_view(), name="api-study-clone"),
    path(STUDY + "progress/", r.StudyProgressApi.as_view(), name="api-study-progress"),
    path(STUDY + "scores/", r.StudyScoresApi.as_view(), name="api-study-scores"),
    path(STUDY + "shares/", r.StudySharesApi.as_view(), name="api-study-shares"),
    path(STUDY + "shares/<str:username>/", r.StudyShareApi.as_view(), name="api-study-share"),
    path(STUDY + "stimuli/", s.StimuliApi.as_view(), name="api-stimuli"),
    path(STUDY + "stimuli/zip/", s.StimuliZipApi.as_view(), name="api-stimuli-zip"),
    path(STUDY + "variants/", s.StimulusVariantsApi.as_view(), name="api-stimulus-variants"),
    path(STIMULUS, s.StimulusApi.as_view(), name="api-stimulus"),
    path(STIMULUS + "image/", s.StimulusImageApi.as_view(), name="api-stimulus-image"),
    path(STIMULUS + "rendition/", s.StimulusRenditionApi.as_view(), name="api-stimulus-rendition"),
    # results and exports
    path(STUDY + "results/", results.StudyResultsApi.as_view(), name="api-study-results"),
    path(STUDY + "results/tables/<str:name>.csv", results.StudyTableApi.as_view(), name="api-study-table"),
    path(STUDY + "results/figures/<str:name>.<str:fmt>", results.StudyFigureApi.as_view(), name="api-study-figure"),
    path(STUDY + "exports/human-maps.zip", results.StudyHumanMapsExportApi.as_view(), name="api-study-export-maps"),
    path(STUDY + "exports/responses.<str:fmt>", results.StudyResponsesExportApi.as_view(), name="api-study-export-responses"),
]
