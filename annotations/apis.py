"""Participant API: the token in the path is the participant's credential (no session, no CSRF).

Each handler: parse -> one service or selector -> serialize. Request bodies are JSON of at most
payloads.MAX_BODY_BYTES (413 beyond); NaN and Infinity are parsed so that the payload validator can
name the field that holds them (they are never stored: the cleaned payload holds finite numbers only).
"""
from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import FileResponse, HttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from studyserver.errors import DomainError, PayloadTooLarge
from studyserver.request_limits import SafeJSONParser
from studyserver.throttling import ParticipantStartThrottle, ParticipantTokenThrottle

from . import selectors
from .models import Stimulus, TaskKind
from .participant_schema import (
    NEXT_OUTPUT,
    UNKNOWN_TOKEN,
    DisplayOutput,
    NextField,
    TrialParamsField,
    error,
)
from .payloads import MAX_BODY_BYTES
from .practice import practice_png
from .resume_cookie import resume_cookie_get, resume_cookie_set
from .services import participation


class ParticipantJSONParser(SafeJSONParser):
    """Non-strict JSON, so NaN and Infinity reach the payload validator, which refuses them by name.
    NUL characters and nesting Python cannot parse are refused (400) before (studyserver/request_limits.py)."""

    strict = False
    depth_checked = False  # payloads are rebuilt from a fixed shape; the walk would cost the hot path


_POINT = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3, "description": "[x, y, t_ms] in stimulus px"}
_DISPLAY = {
    "type": "object",
    "properties": {"width": {"type": "number"}, "height": {"type": "number"}, "dpr": {"type": "number"},
                   "viewport": {"type": "array", "items": {"type": "number"}}},
    "required": ["width", "height"],
}
_COMMON = {"display": _DISPLAY, "pointer_types": {"type": "array", "items": {"type": "string"}}, "user_agent": {"type": "string"}}
PAYLOAD_SCHEMA = {
    "description": "The raw response of one trial, lossless, in stimulus pixels and ms (docs/payloads.md).",
    "oneOf": [
        {"title": "paint", "type": "object", "required": ["display", "strokes"], "properties": {**_COMMON, "strokes": {
            "type": "array", "items": {"type": "object", "required": ["radius", "points"], "properties": {
                "radius": {"type": "number"}, "erase": {"type": "boolean"}, "points": {"type": "array", "items": _POINT}}}}}},
        {"title": "bubble", "type": "object", "required": ["display", "clicks"], "properties": {
            **_COMMON, "clicks": {"type": "array", "items": _POINT}, "bubble_radius": {"type": "number"},
            "blur_sigma": {"type": "number"}, "viewing_ms": {"type": "number"}, "description": {"type": "string"}}},
        {"title": "mouse", "type": "object", "required": ["display", "samples"], "properties": {
            **_COMMON, "samples": {"type": "array", "items": _POINT}, "window_radius": {"type": "number"},
            "blur_sigma": {"type": "number"}, "viewing_ms": {"type": "number"}}},
    ],
}


@extend_schema_field(PAYLOAD_SCHEMA)
class PayloadField(serializers.Field):
    """Any JSON value, passed on as it is: `annotations.payloads` validates it field by field (and
    refuses NaN naming where it is, which a strict JSON check could only call 'invalid JSON')."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


def _too_large(length: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body has {length} bytes; at most {MAX_BODY_BYTES} are accepted",
                           fields={"body": ["too large"]})


class ParticipantApi(APIView):
    """Token-authenticated participant endpoints. Bodies over MAX_BODY_BYTES are refused (413) from
    their Content-Length, before they are read."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [ParticipantJSONParser]
    throttle_classes = [ParticipantTokenThrottle]  # per token, not per IP (studyserver/throttling.py)

    def initial(self, request, *args, **kwargs):
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise _too_large(int(length))
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, RequestDataTooBig):  # over Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE)
            exc = _too_large(int(self.request.META.get("CONTENT_LENGTH") or 0))
        return super().handle_exception(exc)


def trial_payload(trial, participant) -> dict:
    stimulus = trial.stimulus
    geometry = selectors.trial_geometry_get(participant=participant, width=stimulus.width, height=stimulus.height)
    return {
        "id": trial.pk,
        "position": trial.position,
        "task_kind": trial.task_kind,
        "image_url": reverse("participant-trial-image", args=[participant.token, trial.pk]),
        "width": stimulus.width,
        "height": stimulus.height,
        "label": selectors.class_label_short(stimulus.class_name),
        "display": geometry["display"],
        "params": geometry["params"],
    }


def done_payload(participant, progress) -> dict:
    """NextDoneOutput. A participant the study closed under is not completed: `closed_early`, with the
    code if they answered a trial and without it (nor the recruiter's return address) if not."""
    study = participant.study
    code = selectors.completion_code_get(participant=participant)
    return {
        "done": True,
        "closed_early": selectors.participant_closed_early(participant=participant),
        "progress": progress,
        "completion_code": code,
        "completion_url": reverse("participant-done", args=[participant.token]),
        "redirect_url": study.redirect_url if code is not None else "",
    }


class ParticipantStartApi(ParticipantApi):
    """Consent to a live study and get a participant token (the consent page does the same).
    An external id already taking part gets its participant back (200) only with proof: `token`, the
    browser's resume cookie (set by this answer and by the consent page), or the external session id
    stored at its consent; otherwise 409 `already_in_progress`, with no token."""

    throttle_classes = [ParticipantStartThrottle]

    class Input(serializers.Serializer):
        consent = serializers.BooleanField()
        external_id = serializers.CharField(required=False, allow_blank=True, max_length=128,
                                            help_text="the recruiter's participant id (Prolific's PROLIFIC_PID)")
        external_study_id = serializers.CharField(required=False, allow_blank=True, max_length=128)
        external_session_id = serializers.CharField(required=False, allow_blank=True, max_length=128,
                                                    help_text="the recruiter's session id (Prolific's SESSION_ID); "
                                                    "the same one resumes this participant from another browser")
        token = serializers.CharField(required=False, allow_blank=True, max_length=64,
                                      help_text="resume: the token this participant was given before")

    class Output(serializers.Serializer):
        token = serializers.CharField()
        created = serializers.BooleanField(help_text="false: an external id resumed (with proof)")
        task_url = serializers.CharField()
        task_kind = serializers.ChoiceField(choices=TaskKind.values)

    @extend_schema(request=Input, responses={
        201: Output, 200: Output,
        400: error("invalid input, or `consent_required`"),
        404: error("no such study (an unknown slug and a study never launched answer alike)"),
        409: error("`already_in_progress`: the external id takes part in another browser (no proof given); "
                    "`study_paused`: no new participants until the researchers resume the study"),
        410: error("`study_closed`, or `study_full`: nothing was recorded"),
        429: error("too many consents from this address"),
    })
    def post(self, request, slug: str):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data["consent"]:
            return Response({"error": "consent_required", "detail": "consent is required to take part", "fields": {}}, status=400)
        study = selectors.study_public_get(slug=slug)
        participant, created = participation.participant_start(
            study=study,
            external_id=data.validated_data.get("external_id"),
            external_study_id=data.validated_data.get("external_study_id", ""),
            external_session_id=data.validated_data.get("external_session_id", ""),
            user_agent=request.headers.get("User-Agent", ""),
            resume_token=data.validated_data.get("token") or resume_cookie_get(request, study.slug),
        )
        body = {"token": participant.token, "created": created, "task_kind": participant.task_kind,
                "task_url": reverse("participant-task", args=[participant.token])}
        response = Response(self.Output(body).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
        resume_cookie_set(response, request, study.slug, participant.token)
        return response


def next_payload(participant) -> dict:
    """What GET next answers: the open or newly assigned trial, or the completion."""
    trial = participation.trial_next_assign(participant=participant)
    if trial is None:
        participant = participation.participant_finish(participant=participant)
        return done_payload(participant, selectors.participant_progress(participant=participant))
    progress = selectors.participant_progress(participant=participant)
    return {"done": False, "progress": progress, "trial": trial_payload(trial, participant)}


class TrialNextApi(ParticipantApi):
    """The participant's current trial (a reload resumes it) or, when finished, the completion.
    409 `calibration_required` in a study with sizes in degrees until the screen is calibrated;
    409 `study_paused` while the study is paused (keep the page, ask again). Once the study is closed
    an open trial is not handed out again: the answer is the completion, `closed_early` true."""

    @extend_schema(responses={
        200: NEXT_OUTPUT, 404: UNKNOWN_TOKEN,
        409: error("`calibration_required` (POST the calibration first) or `study_paused` (ask again later)"),
    })
    def get(self, request, token: str):
        participant = selectors.participant_by_token(token=token)
        return Response(next_payload(participant))


class ResponseSubmitApi(ParticipantApi):
    """Save one trial's raw response. Idempotent on client_uuid: a retry stores nothing new (200).
    The answer also carries `next`, what GET next would answer now (saving the page a round trip),
    or null when that could not be had (paused study, database hiccup after the save): then GET next."""

    class Input(serializers.Serializer):
        client_uuid = serializers.UUIDField()
        payload = PayloadField()
        duration_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=86_400_000)

    class Output(serializers.Serializer):
        response_id = serializers.IntegerField()
        trial_id = serializers.IntegerField()
        created = serializers.BooleanField(help_text="false: a retry of a stored answer (the same client_uuid)")
        next = NextField(allow_null=True, help_text="what GET next answers now; null: ask GET next")

    @extend_schema(request=Input, responses={
        201: Output, 200: Output,
        400: error("the payload breaks a rule (`fields` names where) or duration_ms is out of range"),
        404: error("unknown token, or a trial that is not this participant's"),
        409: error("the trial was already answered, or the client_uuid was used for another trial"),
        410: error("`study_closed`; the trial's lease expired; or the participant already finished"),
        413: error("the body or the payload is over a size limit"),
    })
    def post(self, request, token: str, trial_id: int):
        participant = selectors.participant_by_token(token=token)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        response, created = participation.response_submit(
            participant=participant,
            trial_id=trial_id,
            client_uuid=data.validated_data["client_uuid"],
            payload=data.validated_data["payload"],
            duration_ms=data.validated_data.get("duration_ms"),
        )
        body = {"response_id": response.pk, "trial_id": response.trial_id, "created": created, "next": None}
        try:  # the answer is committed: whatever happens here, it is acknowledged
            body["next"] = next_payload(participant)
        except (DomainError, DatabaseError):
            pass
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TrialImageApi(ParticipantApi):
    """The picture of one of the participant's own trials (8-bit RGB PNG)."""

    @extend_schema(responses={(200, "image/png"): bytes, 404: error("unknown token, or a trial that is not this participant's")})
    def get(self, request, token: str, trial_id: int):
        name = selectors.trial_rendition_name(token=token, trial_id=trial_id)
        response = FileResponse(Stimulus.rendition.field.storage.open(name, "rb"), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class CalibrationApi(ParticipantApi):
    """Store the screen calibration (credit-card width in CSS px) before the first trial."""

    class Input(serializers.Serializer):
        card_width_px = serializers.FloatField(min_value=1, max_value=100_000)
        dpr = serializers.FloatField(required=False, allow_null=True, min_value=0.1, max_value=16)
        screen = serializers.ListField(child=serializers.FloatField(min_value=0, max_value=100_000), min_length=2, max_length=2, required=False)
        viewport = serializers.ListField(child=serializers.FloatField(min_value=0, max_value=100_000), min_length=2, max_length=2, required=False)

    class Output(serializers.Serializer):
        card_width_px = serializers.FloatField(help_text="CSS px")
        card_width_cm = serializers.FloatField()
        px_per_cm = serializers.FloatField(help_text="CSS px per cm")
        viewing_distance_cm = serializers.FloatField()
        px_per_degree = serializers.FloatField(help_text="CSS px per degree of visual angle")
        dpr = serializers.FloatField(allow_null=True)
        screen = serializers.ListField(child=serializers.FloatField(), allow_null=True)
        viewport = serializers.ListField(child=serializers.FloatField(), allow_null=True)
        at = serializers.DateTimeField()

    @extend_schema(request=Input, responses={
        200: Output, 400: error("invalid input, or a card width that is not plausible (100..4000 CSS px)"),
        404: UNKNOWN_TOKEN, 409: error("a trial was already assigned: the sizes stay as they are"),
        410: error("`study_closed`, or the participant already finished"),
    })
    def post(self, request, token: str):
        participant = selectors.participant_by_token(token=token)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        participant = participation.participant_calibrate(participant=participant, **data.validated_data)
        return Response(participant.calibration)


class PracticeApi(ParticipantApi):
    """GET: the practice trial (not analysed). POST {"payload": ...}: checked with the real trial's
    rules (400 naming the problem); on success the practice is recorded as done."""

    class Input(serializers.Serializer):
        payload = PayloadField()

    class Output(serializers.Serializer):
        practice = serializers.BooleanField(help_text="true: the practice trial, not analysed")
        task_kind = serializers.ChoiceField(choices=TaskKind.values)
        image_url = serializers.CharField()
        width = serializers.IntegerField(help_text="stimulus px")
        height = serializers.IntegerField(help_text="stimulus px")
        label = serializers.CharField()
        region = inline_serializer("PracticeRegion", {
            "boxes": serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                           help_text="[x0, y0, x1, y1] in stimulus px"),
            "polygons": serializers.ListField(child=serializers.ListField(child=serializers.ListField(
                child=serializers.FloatField())), help_text="[[x, y], ...] in stimulus px"),
        }, allow_null=True, help_text="where the object is, for the instructions' example; null when unknown")
        display = DisplayOutput()
        params = TrialParamsField()
        done = serializers.BooleanField(help_text="the practice was already passed")

    class DoneOutput(serializers.Serializer):
        done = serializers.BooleanField(help_text="true: the practice is passed")
        practice_done_at = serializers.DateTimeField()

    @extend_schema(responses={200: Output, 404: UNKNOWN_TOKEN, 409: error("`calibration_required`")})
    def get(self, request, token: str):
        participant = selectors.participant_by_token(token=token)
        practice = selectors.practice_get(participant=participant)
        geometry = selectors.trial_geometry_get(participant=participant, width=practice.width, height=practice.height)
        return Response({
            "practice": True,
            "task_kind": participant.task_kind,
            "image_url": reverse("participant-practice-image", args=[token]),
            "width": practice.width,
            "height": practice.height,
            "label": practice.label,
            "region": practice.region,
            "display": geometry["display"],
            "params": geometry["params"],
            "done": participant.practice_done_at is not None,
        })

    @extend_schema(request=Input, responses={
        200: DoneOutput, 400: error("the answer breaks a rule of the task (`fields` names where)"),
        404: UNKNOWN_TOKEN, 409: error("`calibration_required`"), 410: error("`study_closed`, or the participant already finished"),
        413: error("the body or the payload is over a size limit"),
    })
    def post(self, request, token: str):
        participant = selectors.participant_by_token(token=token)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        participant = participation.practice_submit(participant=participant, payload=data.validated_data["payload"])
        return Response({"done": True, "practice_done_at": participant.practice_done_at})


class PracticeImageApi(ParticipantApi):
    """The practice picture: the study's practice stimulus, or the built-in example (PNG)."""

    @extend_schema(responses={(200, "image/png"): bytes, 404: UNKNOWN_TOKEN})
    def get(self, request, token: str):
        participant = selectors.participant_by_token(token=token)
        practice = selectors.practice_get(participant=participant)
        if practice.stimulus is None:
            response = HttpResponse(practice_png(), content_type="image/png")
        else:
            response = FileResponse(practice.stimulus.rendition.open("rb"), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response
