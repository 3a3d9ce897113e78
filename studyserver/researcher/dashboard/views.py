"""Dashboard pages: the study list, a study's overview (live progress, participant link and QR code,
lifecycle buttons, links to results and downloads, the stimulus gallery), the lifecycle actions with
a confirmation step (archive, restore and delete: the owner only), and clone.

Handlers: access check -> one selector or service -> render. Writes go through the same services as
the REST API (studyserver.researcher.services.studies); their errors come back as messages on the page.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotations.models import Study
from explain.model_catalogue import DEFAULT_MODEL
from studyserver.errors import DomainError, InvalidInput

from .. import result_files as results
from .. import selectors as researcher_selectors
from ..services import studies as study_services
from . import selectors
from .access import study_or_404
from .forms import ImageUploadForm, VariantsForm, ZipUploadForm
from .qr import qr_svg_document, qr_svg_inline

METRIC_COLUMNS = [
    ("pcc", "PCC"), ("sim", "SIM"), ("spearman", "Spearman"), ("kld", "KLD"), ("iou_top10", "IoU 10%"),
    ("iou_top30", "IoU 30%"), ("nss", "NSS"), ("auc_judd", "AUC-J"),
]
STIMULI_PER_PAGE = 8
PROGRESS_POLL_MS = 5000
JOB_STATUSES = ("done", "running", "pending", "failed")  # the order of the jobs bar


@dataclass(frozen=True)
class Action:
    """A lifecycle step with a confirmation page. run(request, study) does it through the service;
    allowed_from: the study states (`study_state`) it applies to; need: the access it takes."""

    name: str
    label: str
    run: Callable[[HttpRequest, Study], object]
    allowed_from: tuple[str, ...]
    explanation: str
    done: str
    danger: bool = False
    need: str = "edit"
    typed_confirm: bool = False  # the person types the study's slug to confirm


def study_state(study: Study) -> str:
    """The status the dashboard shows: "archived" for an archived (closed) study, else its status."""
    return "archived" if study.archived_at is not None else study.status


ACTIONS = {a.name: a for a in (
    Action("launch", "Launch", lambda request, study: study_services.study_launch(study=study), ("draft",),
           "Participants can take the study through its link. Its design freezes: task kinds and their parameters, "
           "stimuli per participant, consent and instructions, stimuli and the models to run can no longer change. "
           "The explanation jobs are queued.",
           "Study {slug} is live; explanation jobs are queued."),
    Action("pause", "Pause", lambda request, study: study_services.study_pause(study=study), ("live",),
           "No new participants are admitted and no new trials handed out. Answers to trials already handed out are "
           "still saved; participants who keep their page open continue when you resume.",
           "Study {slug} is paused."),
    Action("resume", "Resume", lambda request, study: study_services.study_resume(study=study), ("paused",),
           "The study admits participants and hands out trials again.", "Study {slug} is live again."),
    Action("close", "Close", lambda request, study: study_services.study_close(study=study), ("live", "paused"),
           "Data collection ends for good: nobody can take part any more and a closed study cannot be reopened. "
           "Results and exports stay available.",
           "Study {slug} is closed; its results stay available.", danger=True),
    Action("archive", "Archive", lambda request, study: study_services.study_archive(study=study, actor=request.user),
           ("closed",),
           "The study leaves the study list, yours and your collaborators'; the list's “Archived studies” view shows "
           "it, and its address still works. Nothing is deleted: its data, results and exports stay, and participants "
           "still see a closed study. You can restore it at any time.",
           "Study {slug} is archived: it is listed under Archived studies.", need="owner"),
    Action("restore", "Restore", lambda request, study: study_services.study_restore(study=study, actor=request.user),
           ("archived",), "The study comes back into the study list. It stays closed.",
           "Study {slug} is back in the study list.", need="owner"),
    Action("delete", "Delete",
           lambda request, study: study_services.study_delete(
               study=study, actor=request.user, confirm=request.POST.get("confirm", "").strip()),
           ("draft",),
           "The draft is deleted for good: its settings, its stimuli and their variants, and their stored files "
           "(files a copy made with Clone still uses stay), and its shares. This cannot be undone.",
           "Study {slug} is deleted.", danger=True, need="owner", typed_confirm=True),
)}


def actions_for(study: Study) -> list[Action]:
    """The actions the study's state allows and `study.access` may take, in ACTIONS order."""
    state, access = study_state(study), researcher_selectors.ACCESS_ORDER[study.access]
    return [a for a in ACTIONS.values() if state in a.allowed_from and access >= researcher_selectors.ACCESS_ORDER[a.need]]


def participant_link(request, study) -> str:
    return request.build_absolute_uri(reverse("study-entry", args=[study.slug]))


@login_required
def study_list(request):
    """The studies you may see; ?archived=1: the archived ones instead."""
    archived = request.GET.get("archived") in ("1", "true", "yes")
    studies = selectors.study_list(user=request.user, archived=archived)
    return render(request, "researcher/study_list.html", {"studies": studies, "archived": archived})


@login_required
def study_detail(request, slug: str):
    study = study_or_404(request, slug)
    ids = selectors.main_stimuli(study=study).values_list("id", flat=True)
    page = Paginator(ids, STIMULI_PER_PAGE).get_page(request.GET.get("page"))
    link = participant_link(request, study)
    context = {
        "study": study,
        "state": study_state(study),
        "can_edit": study.access != "view",
        "actions": actions_for(study),
        "progress": researcher_selectors.study_progress(study=study),
        "progress_url": reverse("api-study-progress", args=[study.slug]),
        "poll_ms": PROGRESS_POLL_MS,
        "job_statuses": JOB_STATUSES,
        "participant_link": link,
        "qr_svg": qr_svg_inline(link),
        "page": page,
        "rows": selectors.study_gallery(study=study, stimulus_ids=list(page.object_list)),
        "metric_columns": METRIC_COLUMNS,
        "stimulus_target": study.participants_per_stimulus * len(study.task_kinds),
        "tables": results.TABLES,
        "editable": study_services.editable_fields(study.status),
        "image_form": ImageUploadForm(), "zip_form": ZipUploadForm(), "variants_form": VariantsForm(),
        "default_model": DEFAULT_MODEL,
    }
    return render(request, "researcher/study_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def study_action(request, slug: str, action: str):
    """GET: what the action does, and a button to confirm it (delete: a field to type the slug
    into). POST (with the CSRF token): do it. A deleted study's page is gone: back to the list."""
    step = ACTIONS.get(action)
    if step is None:
        raise Http404(f"no action {action!r}")
    study = study_or_404(request, slug, need=step.need)
    context = {"study": study, "action": step, "state": study_state(study), "counts": selectors.study_counts(study=study)}
    if request.method == "GET":
        return render(request, "researcher/study_confirm.html", context)
    try:
        step.run(request, study)
    except DomainError as exc:
        if step.typed_confirm and isinstance(exc, InvalidInput):  # mistyped: ask again
            return render(request, "researcher/study_confirm.html", {**context, "error": exc.message}, status=400)
        messages.error(request, f"{step.label} failed: {exc.message}")
        return HttpResponseRedirect(reverse("dashboard-study", args=[slug]))
    messages.success(request, step.done.format(slug=slug))
    if action == "delete":
        return HttpResponseRedirect(reverse("dashboard"))
    return HttpResponseRedirect(reverse("dashboard-study", args=[slug]))


@login_required
@require_http_methods(["GET", "POST"])
def study_clone(request, slug: str):
    """A new draft of your own with this study's settings and stimuli (any access may clone)."""
    study = study_or_404(request, slug)
    values = {"title": f"{study.title} (copy)", "slug": ""}
    if request.method == "POST":
        values = {"title": request.POST.get("title", "").strip(), "slug": request.POST.get("slug", "").strip()}
        try:
            clone = study_services.study_clone(study=study, owner=request.user, **values)
        except DomainError as exc:
            messages.error(request, f"Clone failed: {exc.message}")
        else:
            messages.success(request, f"Study {clone.slug} is a draft copy of {study.slug}: {clone.stimuli.count()} stimuli, same settings.")
            return HttpResponseRedirect(reverse("dashboard-study", args=[clone.slug]))
    return render(request, "researcher/study_clone.html", {"study": study, "values": values}, status=400 if request.method == "POST" else 200)


@login_required
def participant_qr(request, slug: str):
    """The participant link's QR code as an SVG file."""
    study = study_or_404(request, slug)
    response = HttpResponse(qr_svg_document(participant_link(request, study)), content_type="image/svg+xml")
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="{study.slug}-qr.svg"'
    return response
