from django.urls import path

from . import design, images, preview, report, views

STUDY = "dashboard/studies/<slug:slug>/"
PREVIEW = STUDY + "preview/"

urlpatterns = [
    path("dashboard/", views.study_list, name="dashboard"),
    path("dashboard/studies/", views.study_list, name="dashboard-studies"),
    path("dashboard/new-study/", design.study_new, name="dashboard-study-new"),
    path(STUDY, views.study_detail, name="dashboard-study"),
    path(STUDY + "settings/", design.study_settings, name="dashboard-study-settings"),
    path(STUDY + "stimuli/upload/", design.stimuli_upload, name="dashboard-stimuli-upload"),
    path(STUDY + "stimuli/<int:stimulus_id>/remove/", design.stimulus_remove, name="dashboard-stimulus-remove"),
    path(STUDY + "variants/", design.variants_create, name="dashboard-variants"),
    path(STUDY + "launch/", views.study_action, {"action": "launch"}, name="dashboard-study-launch"),
    path(STUDY + "pause/", views.study_action, {"action": "pause"}, name="dashboard-study-pause"),
    path(STUDY + "resume/", views.study_action, {"action": "resume"}, name="dashboard-study-resume"),
    path(STUDY + "close/", views.study_action, {"action": "close"}, name="dashboard-study-close"),
    path(STUDY + "archive/", views.study_action, {"action": "archive"}, name="dashboard-study-archive"),
    path(STUDY + "restore/", views.study_action, {"action": "restore"}, name="dashboard-study-restore"),
    path(STUDY + "delete/", views.study_action, {"action": "delete"}, name="dashboard-study-delete"),
    path(STUDY + "clone/", views.study_clone, name="dashboard-study-clone"),
    path(STUDY + "qr.svg", views.participant_qr, name="dashboard-study-qr"),
    path(PREVIEW, preview.start, name="dashboard-preview"),
    path(PREVIEW + "task/", preview.task_page, name="dashboard-preview-task"),
    path(PREVIEW + "next/", preview.trial_next, name="dashboard-preview-next"),
    path(PREVIEW + "trials/<int:position>/response/", preview.response_check, name="dashboard-preview-response"),
    path(PREVIEW + "trials/<int:position>/image/", preview.trial_image, name="dashboard-preview-image"),
    path(PREVIEW + "practice/", preview.practice, name="dashboard-preview-practice"),
    path(PREVIEW + "practice/image/", preview.practice_image, name="dashboard-preview-practice-image"),
    path(PREVIEW + "calibration/", preview.calibration, name="dashboard-preview-calibration"),
    path(PREVIEW + "done/", preview.done, name="dashboard-preview-done"),
    path(STUDY + "report/", report.report, name="dashboard-report"),
    path(STUDY + "report/figures/<str:name>.<str:fmt>", report.figure, name="dashboard-figure"),
    path(STUDY + "report/tables/<str:name>.csv", report.table_csv, name="dashboard-table"),
    path(STUDY + "report/reliability/", report.reliability_recompute, name="dashboard-reliability"),
    path(STUDY + "report/maps/", report.maps_refresh, name="dashboard-maps-refresh"),
    path(STUDY + "report/recipe/", report.recipe_set, name="dashboard-recipe"),
    path(STUDY + "export/human-maps.zip", report.human_maps_zip, name="dashboard-export-maps"),
    path(STUDY + "export/responses.<str:fmt>", report.responses_export, name="dashboard-export-responses"),
    path("dashboard/stimuli/<int:stimulus_id>/image.png", images.stimulus_png, name="dashboard-stimulus-png"),
    # before human-<kind>.png, whose <str> would swallow "-top"
    path("dashboard/stimuli/<int:stimulus_id>/human-<str:task_kind>-top.png", images.human_regions_png, name="dashboard-human-regions-png"),
    path("dashboard/stimuli/<int:stimulus_id>/human-<str:task_kind>.png", images.human_map_png, name="dashboard-human-map-png"),
    path("dashboard/stimuli/<int:stimulus_id>/model-<int:job_id>.png", images.model_map_png, name="dashboard-model-map-png"),
    path("dashboard/stimuli/<int:stimulus_id>/model-<int:job_id>-top.png", images.model_regions_png, name="dashboard-model-regions-png"),
]
