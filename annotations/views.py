"""Participant pages: consent, the task page (calibration, instructions, practice, trials) and the
completion page. The task page is one HTML page driven by annotations/static (task.js)."""
from __future__ import annotations

from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from studyserver.errors import DomainError, Gone

from . import selectors
from .models import Participant, Study
from .services import participation
from .task_params import CARD_WIDTH_CM, task_params_resolve

SESSION_KEY = "participant_tokens"
EXTERNAL_PARAMS = {"PROLIFIC_PID": "external_id", "pid": "external_id", "STUDY_ID": "external_study_id", "SESSION_ID": "external_session_id"}


def _external_ids(source) -> dict:
    ids = {}
    for param, field in EXTERNAL_PARAMS.items():
        value = (source.get(param) or "").replace("\x00", "").strip()  # PostgreSQL cannot store NUL
        if value and field not in ids:
            ids[field] = value[:128]
    return ids


@require_http_methods(["GET", "POST"])
def study_entry(request, slug: str):
    """The study link: consent. Accepting creates (or, for a known external id, resumes) the participant."""
    try:
        study = selectors.study_public_get(slug=slug)
    except DomainError:
        raise Http404("no such study") from None
    known = request.session.get(SESSION_KEY, {}).get(slug)
    if known and request.method == "GET" and not _external_ids(request.GET):
        return HttpResponseRedirect(reverse("participant-task", args=[known]))
    if study.status != Study.Status.LIVE:
        return render(request, "annotations/closed.html", {"study": study}, status=410)
    error = ""
    if request.method == "POST":
        if request.POST.get("consent") != "yes":
            error = "Please tick the box to give your consent, or close this page to leave."
        else:
            try:
                participant, _ = participation.participant_start(
                    study=study, user_agent=request.headers.get("User-Agent", ""), **_external_ids(request.POST)
                )
            except Gone as exc:
                return render(request, "annotations/closed.html", {"study": study, "full": exc.code == "study_full"}, status=410)
            request.session.setdefault(SESSION_KEY, {})[slug] = participant.token
            request.session.modified = True
            return HttpResponseRedirect(reverse("participant-task", args=[participant.token]))
    context = {"study": study, "external": {k: v for k, v in request.GET.items() if k in EXTERNAL_PARAMS}, "error": error}
    return render(request, "annotations/consent.html", context, status=400 if error else 200)


def _participant_or_404(token: str) -> Participant:
    try:
        return selectors.participant_by_token(token=token)
    except DomainError:
        raise Http404("unknown participant") from None


def task_page(request, token: str):
    participant = _participant_or_404(token)
    if participant.status != Participant.Status.ACTIVE:
        return HttpResponseRedirect(reverse("participant-done", args=[token]))
    study = participant.study
    resolved = task_params_resolve(study.task_params)
    config = {
        "token": token,
        "nextUrl": reverse("participant-trial-next", args=[token]),
        "submitUrlTemplate": reverse("participant-response", args=[token, 0]).replace("/0/", "/{id}/"),
        "doneUrl": reverse("participant-done", args=[token]),
        "practiceUrl": reverse("participant-practice", args=[token]),
        "calibrationUrl": reverse("participant-calibration", args=[token]),
        "taskKind": participant.task_kind,
        "variant": resolved["bubble"]["variant"],
        "needsCalibration": selectors.needs_calibration(participant=participant),
        "practiceDone": participant.practice_done_at is not None,
        "resumed": participant.trials.exists(),
        "cardWidthCm": CARD_WIDTH_CM,
    }
    context = {"study": study, "participant": participant, "config": config, "kind": participant.task_kind,
               "variant": resolved["bubble"]["variant"], "params": resolved}
    return render(request, "annotations/task.html", context)


def done_page(request, token: str):
    participant = _participant_or_404(token)
    if participant.status == Participant.Status.ACTIVE:
        return HttpResponseRedirect(reverse("participant-task", args=[token]))
    study = participant.study
    context = {
        "study": study,
        "participant": participant,
        "completion_code": selectors.completion_code_get(participant=participant),
        "redirect_delay_s": task_params_resolve(study.task_params)["completion"]["redirect_delay_s"],
    }
    return render(request, "annotations/done.html", context)
