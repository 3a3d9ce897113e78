"""Preview: the researcher takes the study as a participant, and nothing is stored.

The participant's own page and script (annotations/templates/annotations/task.html, task.js) run
against these endpoints instead of the participant API. The preview's state -- its plan of stimuli,
how many are answered, practice and calibration -- is kept in the researcher's session; no
Participant, Trial or Response row is written (tests count them). Answers are checked with the real
rules (annotations.services.preview), so the researcher sees what participants will be told.

The JSON endpoints are exempt from CSRF: task.js posts without the token, and all they change is the
caller's own preview state in their session.
"""
from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations import selectors as participant_selectors
from annotations.models import StimulusRole
from annotations.payloads import MAX_BODY_BYTES
from annotations.practice import practice_png
from annotations.services import preview as preview_services
from annotations.task_params import CARD_WIDTH_CM, task_params_resolve
from studyserver.errors import DomainError, InvalidInput, PayloadTooLarge

from .access import study_or_404

SESSION_KEY = "dashboard_previews"
SENTINEL = 987654321


def _state(request, slug: str) -> dict | None:
    return request.session.get(SESSION_KEY, {}).get(slug)


def _save(request, slug: str, state: dict) -> None:
    request.session.setdefault(SESSION_KEY, {})[slug] = state
    request.session.modified = True


def _error(exc: DomainError) -> JsonResponse:
    return JsonResponse({"error": exc.code, "detail": exc.message, "fields": exc.fields}, status=exc.status)


def _context(request, slug: str):
    """(study, state, unsaved participant) of a running preview; 404 JSON-less when none runs."""
    study = study_or_404(request, slug)
    state = _state(request, slug)
    if state is None:
        raise Http404("no preview running; start one from the study's page")
    participant = preview_services.preview_participant(study=study, task_kind=state["kind"], calibration=state.get("calibration"))
    return study, state, participant


def _progress(study, state) -> dict:
    return {"done": state["done"], "total": len(state["plan"])}


@login_required
@require_GET
def start(request, slug: str):
    """Start (or restart) a preview with ?kind= (the study's first task kind by default)."""
    study = study_or_404(request, slug)
    kind = request.GET.get("kind") or study.task_kinds[0]
    try:
        preview_services.preview_participant(study=study, task_kind=kind)
    except InvalidInput as exc:
        raise Http404(exc.message) from None
    plan = preview_services.preview_plan(study=study)
    _save(request, slug, {"kind": kind, "plan": plan, "done": 0, "practice_done": False, "calibration": None})
    return HttpResponseRedirect(reverse("dashboard-preview-task", args=[slug]))


@login_required
@require_GET
def task_page(request, slug: str):
    study = study_or_404(request, slug)
    state = _state(request, slug)
    if state is None:
        return HttpResponseRedirect(reverse("dashboard-preview", args=[slug]))
    resolved = task_params_resolve(study.task_params)
    submit = reverse("dashboard-preview-response", args=[slug, SENTINEL]).replace(str(SENTINEL), "{id}")
    config = {
        "token": "preview",
        "preview": True,
        "nextUrl": reverse("dashboard-preview-next", args=[slug]),
        "submitUrlTemplate": submit,
        "doneUrl": reverse("dashboard-preview-done", args=[slug]),
        "practiceUrl": reverse("dashboard-preview-practice", args=[slug]),
        "calibrationUrl": reverse("dashboard-preview-calibration", args=[slug]),
        "taskKind": state["kind"],
        "variant": resolved["bubble"]["variant"],
        "needsCalibration": resolved["units"] == "deg" and not state.get("calibration"),
        "practiceDone": state["practice_done"],
        "resumed": state["done"] > 0,
        "cardWidthCm": CARD_WIDTH_CM,
    }
    context = {"study": study, "config": config, "kind": state["kind"], "variant": resolved["bubble"]["variant"],
               "params": resolved, "preview": state}
    return render(request, "researcher/preview_task.html", context)


def _trial(study, state, participant, position: int) -> dict:
    stimulus = preview_services.preview_stimulus(study=study, stimulus_id=state["plan"][position])
    geometry = participant_selectors.trial_geometry_get(participant=participant, width=stimulus.width, height=stimulus.height)
    return {
        "id": position, "position": position, "task_kind": participant.task_kind,
        "image_url": reverse("dashboard-preview-image", args=[study.slug, position]),
        "width": stimulus.width, "height": stimulus.height,
        "label": participant_selectors.class_label_short(stimulus.class_name),
        "display": geometry["display"], "params": geometry["params"],
        "role": stimulus.role, "name": stimulus.name, "condition": stimulus.condition,
    }


@login_required
@require_GET
def trial_next(request, slug: str):
    study, state, participant = _context(request, slug)
    if state["done"] >= len(state["plan"]):
        return JsonResponse({"done": True, "progress": _progress(study, state), "completion_code": study.completion_code,
                             "completion_url": reverse("dashboard-preview-done", args=[slug]), "redirect_url": ""})
    try:
        trial = _trial(study, state, participant, state["done"])
    except DomainError as exc:  # calibration_required
        return _error(exc)
    return JsonResponse({"done": False, "progress": _progress(study, state), "trial": trial})


def _json_body(request):
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the request body has {length} bytes; at most {MAX_BODY_BYTES} are accepted")
    try:
        return json.loads(request.body or b"{}")
    except ValueError:
        raise InvalidInput("the body is not JSON") from None


@csrf_exempt
@login_required
@require_POST
def response_check(request, slug: str, position: int):
    """Check the answer like a real submission; count it in the session; store nothing."""
    study, state, participant = _context(request, slug)
    try:
        if position != state["done"] or position >= len(state["plan"]):
            return JsonResponse({"error": "conflict", "detail": "this preview image was already answered", "fields": {}}, status=409)
        body = _json_body(request)
        stimulus = preview_services.preview_stimulus(study=study, stimulus_id=state["plan"][position])
        preview_services.preview_answer_check(participant=participant, width=stimulus.width, height=stimulus.height,
                                              payload=body.get("payload"))
    except DomainError as exc:
        return _error(exc)
    state["done"] += 1
    _save(request, slug, state)
    return JsonResponse({"preview": True, "stored": False, "trial_id": position}, status=201)


@login_required
@require_GET
def trial_image(request, slug: str, position: int):
    study, state, _ = _context(request, slug)
    if not 0 <= position < len(state["plan"]):
        raise Http404("no such preview image")
    stimulus = preview_services.preview_stimulus(study=study, stimulus_id=state["plan"][position])
    return FileResponse(stimulus.rendition.open("rb"), content_type="image/png")


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def practice(request, slug: str):
    study, state, participant = _context(request, slug)
    spec = participant_selectors.practice_get(participant=participant)
    if request.method == "POST":
        try:
            preview_services.preview_answer_check(participant=participant, width=spec.width, height=spec.height,
                                                  payload=_json_body(request).get("payload"))
        except DomainError as exc:
            return _error(exc)
        state["practice_done"] = True
        _save(request, slug, state)
        return JsonResponse({"done": True, "practice_done_at": None})
    try:
        geometry = participant_selectors.trial_geometry_get(participant=participant, width=spec.width, height=spec.height)
    except DomainError as exc:
        return _error(exc)
    return JsonResponse({
        "practice": True, "task_kind": participant.task_kind,
        "image_url": reverse("dashboard-preview-practice-image", args=[slug]),
        "width": spec.width, "height": spec.height, "label": spec.label, "region": spec.region,
        "display": geometry["display"], "params": geometry["params"], "done": state["practice_done"],
    })


@login_required
@require_GET
def practice_image(request, slug: str):
    study, _, participant = _context(request, slug)
    spec = participant_selectors.practice_get(participant=participant)
    if spec.stimulus is None:
        return HttpResponse(practice_png(), content_type="image/png")
    return FileResponse(spec.stimulus.rendition.open("rb"), content_type="image/png")


@csrf_exempt
@login_required
@require_POST
def calibration(request, slug: str):
    study, state, _ = _context(request, slug)
    try:
        body = _json_body(request)
        state["calibration"] = preview_services.preview_calibration(card_width_px=float(body.get("card_width_px", 0)))
    except (TypeError, ValueError):
        return _error(InvalidInput("card_width_px must be a number", fields={"card_width_px": ["not a number"]}))
    except DomainError as exc:
        return _error(exc)
    _save(request, slug, state)
    return JsonResponse(state["calibration"])


@login_required
@require_GET
def done(request, slug: str):
    study, state, _ = _context(request, slug)
    roles = dict(study.stimuli.filter(pk__in=state["plan"]).values_list("id", "role"))
    n_catch = sum(1 for sid in state["plan"][: state["done"]] if roles.get(sid) == StimulusRole.CATCH)
    context = {"study": study, "preview": state, "answered": state["done"], "n_catch": n_catch,
               "planned": len(state["plan"]), "kinds": study.task_kinds}
    return render(request, "researcher/preview_done.html", context)
