from django.urls import path

from studyserver.throttling import ParticipantStartThrottle, throttled

from . import apis, views

urlpatterns = [
    # consent by the form: limited per IP like the API's participant start
    path("s/<slug:slug>/", throttled(ParticipantStartThrottle, views.study_entry), name="study-entry"),
    path("p/<str:token>/", views.task_page, name="participant-task"),
    path("p/<str:token>/done/", views.done_page, name="participant-done"),
    path("api/v1/studies/<slug:slug>/participants/", apis.ParticipantStartApi.as_view(), name="participant-start"),
    path("api/v1/participant/<str:token>/next/", apis.TrialNextApi.as_view(), name="participant-trial-next"),
    path(
        "api/v1/participant/<str:token>/trials/<int:trial_id>/response/",
        apis.ResponseSubmitApi.as_view(),
        name="participant-response",
    ),
    path(
        "api/v1/participant/<str:token>/trials/<int:trial_id>/image/",
        apis.TrialImageApi.as_view(),
        name="participant-trial-image",
    ),
    path("api/v1/participant/<str:token>/calibration/", apis.CalibrationApi.as_view(), name="participant-calibration"),
    path("api/v1/participant/<str:token>/practice/", apis.PracticeApi.as_view(), name="participant-practice"),
    path("api/v1/participant/<str:token>/practice/image/", apis.PracticeImageApi.as_view(), name="participant-practice-image"),
]
