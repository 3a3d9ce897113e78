"""Participant pages: consent, the task page (calibration, instructions, practice, trials) and the
completion page. The task page is one HTML page driven by annotations/static (task.js)."""
from __future__ import annotations

from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from studyserver.errors import DomainError

from . import selectors
from .models import Participant, Study
from .resume_cookie import resume_cookie_get, resume_cookie_set
from .services import participation
from .task_params import CARD_WIDTH_CM, task_params_resolve

LEGACY_SESSION_KEY = "participant_tokens"  # where consents kept the token before the resume cookie
EXTERNAL_PARAMS = {"PROLIFIC_PID": "external_id", "pid": "external_id", "STUDY_ID": "external_study_id", "SESSION_ID": "external_session_id"}


def _external_ids(source) -> dict:
    ids = {}
    for param, field in EXTERNAL_PARAMS.items():
        value = (source.get(param) or "").replace("\x00", "").strip()  # PostgreSQL cannot store NUL
        if value and field not in ids:
            ids[field] = value[:128]
    return ids


def _refused(request, study: Study, code: str, status: int):
    """The page for a consent the study cannot take: full or closed (410), paused (409), or an external
    id already taking part elsewhere (409: no token and nothing of that participant shown)."""
    if code == "already_in_progress":
        return render(request, "annotations/in_progress.html", {"study": study}, status=status)
    reason = {"study_full": "full", "study_paused": "paused"}.get(code, "closed")
    return render(request, "annotations/closed.html", {"study": study, "reason": reason}, status=status)


def _held_token(request, slug: str) -> str:
    """The token this browser holds for the study: its resume cookie, or (consents made before the
    cookie existed) the token the session kept."""
    return resume_cookie_get(request, slug) or str(request.session.get(LEGACY_SESSION_KEY, {}).get(slug, ""))


def _resumed(request, study: Study, participant: Participant):
    """To the participant's page; the browser keeps their resume cookie."""
    response = HttpResponseRedirect(reverse("participant-task", args=[participant.token]))
    resume_cookie_set(response, request, study.slug, participant.token)
    return response


@require_http_methods(["GET", "POST"])
def study_entry(request, slug: str):
    """The study link: consent. Accepting creates the participant; an external id already taking part
    resumes only with proof (the resume cookie, or the recruiter's session id stored at consent;
    `selectors.resume_proven`), and is refused otherwise. A study never launched is a 404, as an
    unknown slug is; paused: 409, closed: 410 (the participant's own page still opens with proof)."""
    try:
        study = selectors.study_public_get(slug=slug)
    except DomainError:
        raise Http404("no such study") from None
    held = _held_token(request, slug)
    ids = _external_ids(request.POST if request.method == "POST" else request.GET)
    proof = {"resume_token": held, "external_session_id": ids.get("external_session_id", "")}
    if request.method == "GET":
        try:
            known = (selectors.participant_resume_get(study=study, external_id=ids["external_id"], **proof)
                     if "external_id" in ids else selectors.participant_by_resume_token(study=study, token=held))
        except DomainError as exc:
            return _refused(request, study, exc.code, exc.status)
        if known is not None:
            return _resumed(request, study, known)
    error = ""
    if request.method == "POST" and request.POST.get("consent") == "yes":
        try:
            participant, _ = participation.participant_start(
                study=study, user_agent=request.headers.get("User-Agent", ""), resume_token=held, **ids)
        except DomainError as exc:
            return _refused(request, study, exc.code, exc.status)
        return _resumed(request, study, participant)
    if study.status == Study.Status.PAUSED:
        return _refused(request, study, "study_paused", 409)
    if study.status != Study.Status.LIVE:
        return _refused(request, study, "study_closed", 410)
    if request.method == "POST":
        error = "Please tick the box to give your consent, or close this page to leave."
    context = {"study": study, "external": {k: v for k, v in request.GET.items() if k in EXTERNAL_PARAMS}, "error": error}
    return render(request, "annotations/consent.html", context, status=400 if error else 200)


def _participant_or_404(token: str) -> Participant:
    try:
        return selectors.participant_by_token(token=token)
    except DomainError:
        raise Http404("unknown participant") from None


def task_page(request, token: str):
    participant = _participant_or_404(token)
    if participant.status != Participant.Status.ACTIVE or selectors.participant_closed_early(participant=participant):
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
    """The completion code; or, when the study closed under the participant, that it closed: with the
    code if they answered at least one trial, without it (and asked to return the study) if not."""
    participant = _participant_or_404(token)
    closed_early = selectors.participant_closed_early(participant=participant)
    if participant.status == Participant.Status.ACTIVE and not closed_early:
        return HttpResponseRedirect(reverse("participant-task", args=[token]))
    study = participant.study
    context = {
        "study": study,
        "participant": participant,
        "closed_early": closed_early,
        "answered": selectors.participant_progress(participant=participant)["done"],
        "completion_code": selectors.completion_code_get(participant=participant),
        "redirect_delay_s": task_params_resolve(study.task_params)["completion"]["redirect_delay_s"],
    }
    return render(request, "annotations/done.html", context)
