"""Designing a study from the browser: create, change settings, upload stimuli (one image or a zip
with its labels CSV), generate corrupted variants, remove a stimulus. Each handler: form -> one
service of studyserver.researcher.services.studies (the REST API's) -> redirect; problems come back as messages
and form errors, and nothing is stored for them (the services are all or nothing)."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from studyserver.errors import DomainError

from .. import selectors as researcher_selectors
from ..services import studies as study_services
from .access import study_or_404
from .forms import (
    ImageUploadForm,
    StudyForm,
    VariantsForm,
    ZipUploadForm,
    explain_choices,
)


def _refused(request, form, exc: DomainError, what: str) -> None:
    messages.error(request, f"{what}: {exc.message}")
    for name, problems in exc.fields.items():
        if name in form.fields:
            for problem in problems:
                form.add_error(name, problem)


def _back(slug: str, anchor: str = ""):
    return HttpResponseRedirect(reverse("dashboard-study", args=[slug]) + anchor)


@login_required
@require_http_methods(["GET", "POST"])
def study_new(request):
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = study_services.study_create(owner=request.user, **form.settings())
        except DomainError as exc:
            _refused(request, form, exc, "The study was not created")
        else:
            messages.success(request, f"Draft study {study.slug} created. Add stimuli below, preview it, then launch it.")
            return _back(study.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "researcher/study_form.html", {"form": form, "study": None, "explain_choices": explain_choices()}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def study_settings(request, slug: str):
    """Every setting while a draft; once launched, only those the service allows (the rest shown disabled)."""
    study = study_or_404(request, slug, need="edit")
    editable = study_services.editable_fields(study.status)
    form = StudyForm(request.POST or None, study=study, editable=editable)
    if request.method == "POST" and form.is_valid():
        try:
            study = study_services.study_update(study=study, **form.settings())
        except DomainError as exc:
            _refused(request, form, exc, "Nothing was changed")
        else:
            messages.success(request, "Settings saved.")
            return _back(study.slug)
    context = {"form": form, "study": study, "editable": editable, "explain_choices": explain_choices()}
    return render(request, "researcher/study_form.html", context, status=400 if request.method == "POST" else 200)


def _too_large(upload, limit: int) -> str | None:
    return f"{upload.name} is {upload.size} bytes; the limit is {limit} bytes" if upload.size > limit else None


@login_required
@require_POST
def stimuli_upload(request, slug: str):
    """One image (field `image`) or a zip (field `archive`, optional `labels`): all or nothing."""
    study = study_or_404(request, slug, need="edit")
    zipped = "archive" in request.FILES
    form = (ZipUploadForm if zipped else ImageUploadForm)(request.POST, request.FILES)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"Nothing was uploaded: {problems}")
        return _back(slug, "#design")
    try:
        if zipped:
            archive, labels = form.cleaned_data["archive"], form.cleaned_data["labels"]
            if problem := _too_large(archive, settings.STIMULUS_ZIP_MAX_BYTES):
                raise DomainError(problem)
            made = study_services.stimuli_import_zip(study=study, archive=archive, labels=labels.read() if labels else None)
        else:
            image = form.cleaned_data["image"]
            if problem := _too_large(image, settings.STIMULUS_MAX_BYTES):
                raise DomainError(problem)
            made = [study_services.stimulus_create(study=study, data=image.read(), filename=image.name, **form.stimulus_fields())]
    except DomainError as exc:
        messages.error(request, f"Nothing was uploaded: {exc.message}")
    else:
        messages.success(request, f"{len(made)} stimulus image(s) added: {', '.join(s.name for s in made[:10])}{' …' if len(made) > 10 else ''}")
    return _back(slug, "#design")


@login_required
@require_POST
def variants_create(request, slug: str):
    study = study_or_404(request, slug, need="edit")
    form = VariantsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "No variants made: choose at least one corruption and one severity.")
        return _back(slug, "#design")
    try:
        made = study_services.stimulus_variants_create(study=study, **form.cleaned_data)
    except DomainError as exc:
        messages.error(request, f"No variants made: {exc.message}")
    else:
        messages.success(request, f"{len(made)} corrupted variant(s) made: {', '.join(sorted({s.condition for s in made}))}.")
    return _back(slug, "#design")


@login_required
@require_POST
def stimulus_remove(request, slug: str, stimulus_id: int):
    study = study_or_404(request, slug, need="edit")
    try:
        stimulus = researcher_selectors.stimulus_get(study=study, stimulus_id=stimulus_id)
        removed = study_services.stimulus_remove(study=study, stimulus=stimulus)
    except DomainError as exc:
        messages.error(request, f"Not removed: {exc.message}")
    else:
        messages.success(request, f"Removed {stimulus.name or stimulus.pk}" + (f" and {len(removed) - 1} variant(s)" if len(removed) > 1 else "") + ".")
    return _back(slug, "#gallery")
