"""Researcher REST API (v1): authentication, studies and their lifecycle, progress, scores, sharing.

Every endpoint needs a logged-in researcher (token: `Authorization: Token <key>`, or the session of
the login page); who may see or change which study is decided in `studyserver/researcher/selectors.py`. Handlers:
parse -> one selector or service -> serialize. Errors have one shape, {"error", "detail", "fields"}
(studyserver/api_errors.py). Stimulus endpoints live in `stimuli.py`, results in `results.py`.
"""
from __future__ import annotations

from django.contrib.auth import authenticate
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import selectors as analysis_selectors
from annotations.models import StudyShare, TaskKind
from explain.model_catalogue import DEFAULT_MODEL
from explain.study_config import explain_options
from studyserver.api_errors import ErrorOutput
from studyserver.authentication import token_expired, token_expires
from studyserver.errors import InvalidInput
from studyserver.throttling import LoginThrottle

from .. import selectors as selectors
from ..services import studies as study_services

ERROR_TEXT = {
    400: "invalid input (the fields say which)",
    401: "not logged in",
    403: "you can see this study but lack the access this needs",
    404: "no such study (or not yours or shared with you), or no such object in it",
    409: "the study's status does not allow this, or a frozen setting would change",
    413: "the upload is over the size limit",
}


def errors(*codes: int) -> dict:
    return {code: OpenApiResponse(ErrorOutput, description=ERROR_TEXT[code]) for code in (401, *codes)}


class ResearcherApi(APIView):
    permission_classes = [IsAuthenticated]


# --- authentication ------------------------------------------------------------------------------


class AuthTokenApi(APIView):
    """Exchange a username and password for an API token: the same token on every call until it expires
    (`API_TOKEN_TTL_DAYS`), then a new one."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]  # per client IP + username tried

    class Input(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

    class Output(serializers.Serializer):
        token = serializers.CharField(help_text="send as `Authorization: Token <token>`")
        username = serializers.CharField()
        expires = serializers.DateTimeField(
            allow_null=True, help_text="when the token stops working (API_TOKEN_TTL_DAYS after it was made); null: never"
        )

    @extend_schema(request=Input, responses={200: Output, 400: ErrorOutput}, auth=[])
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
            raise InvalidInput("wrong username or password", fields={"password": ["wrong username or password"]})
        token, _ = Token.objects.get_or_create(user=user)
        if token_expired(token):
            # a concurrent call may have replaced it already: get_or_create then returns that one
            Token.objects.filter(pk=token.pk).delete()
            token, _ = Token.objects.get_or_create(user=user)
        output = {"token": token.key, "username": user.get_username(), "expires": token_expires(token)}
        return Response(self.Output(output).data)


class AuthTokenRevokeApi(ResearcherApi):
    """Delete the caller's API token (the next POST to /auth/token/ makes a new one)."""

    @extend_schema(request=None, responses={204: None, **errors()})
    def post(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- studies -------------------------------------------------------------------------------------


class ExplainEntry(serializers.Serializer):
    model = serializers.CharField(default=DEFAULT_MODEL, help_text="a model key, see /api/v1/explain/options/")
    method = serializers.CharField(help_text="a method key, see /api/v1/explain/options/")
    params = serializers.DictField(default=dict, help_text="method parameters; defaults fill the rest")


class StudySettings(serializers.Serializer):
    """The settings a researcher sets (all optional when editing)."""

    slug = serializers.SlugField(max_length=80, required=False, help_text="the participant link /s/<slug>/; made from the title if empty")
    title = serializers.CharField(max_length=200)
    task_kinds = serializers.ListField(child=serializers.ChoiceField(TaskKind.choices), min_length=1, required=False)
    task_params = serializers.DictField(child=serializers.DictField(), required=False, help_text="{task kind: {parameter: value}}")
    participants_per_stimulus = serializers.IntegerField(min_value=1, max_value=100000, required=False)
    stimuli_per_participant = serializers.IntegerField(min_value=1, max_value=100000, required=False)
    consent_text = serializers.CharField(required=False)
    instructions_text = serializers.CharField(required=False)
    completion_code = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text="made at launch if empty")
    redirect_url = serializers.URLField(required=False, allow_blank=True, help_text="where finished participants are sent")
    explain_config = ExplainEntry(many=True, required=False, help_text="models and methods to run at launch")


class StudyOutput(serializers.Serializer):
    slug = serializers.SlugField()
    title = serializers.CharField()
    status = serializers.CharField()
    owner = serializers.CharField(source="owner.username")
    access = serializers.ChoiceField(["owner", "edit", "view"], help_text="what you may do with it")
    task_kinds = serializers.ListField(child=serializers.CharField())
    task_params = serializers.DictField()
    participants_per_stimulus = serializers.IntegerField()
    stimuli_per_participant = serializers.IntegerField()
    consent_text = serializers.CharField()
    instructions_text = serializers.CharField()
    completion_code = serializers.CharField()
    redirect_url = serializers.CharField()
    explain_config = serializers.ListField(child=serializers.DictField())
    n_stimuli = serializers.IntegerField()
    editable_fields = serializers.ListField(child=serializers.CharField(), help_text="settings you may change in this status")
    participant_url = serializers.CharField()
    created_at = serializers.DateTimeField()
    launched_at = serializers.DateTimeField(allow_null=True)
    archived_at = serializers.DateTimeField(
        allow_null=True, help_text="set while the study is archived (hidden from the list; restore brings it back)"
    )


def study_data(request, study) -> dict:
    study.n_stimuli = getattr(study, "n_stimuli", None) or study.stimuli.count()
    study.access = getattr(study, "access", None) or selectors.study_access(user=request.user, study=study)
    study.editable_fields = list(study_services.editable_fields(study.status)) if study.access != "view" else []
    study.participant_url = request.build_absolute_uri(reverse("study-entry", args=[study.slug]))
    return StudyOutput(study).data


def _settings(validated: dict) -> dict:
    return {name: (list(map(dict, value)) if name == "explain_config" else value) for name, value in validated.items()}


class StudiesApi(ResearcherApi):
    """List the studies you own or that are shared with you (archived ones only with ?archived=1);
    create a draft study."""

    class Filter(serializers.Serializer):
        archived = serializers.BooleanField(default=False, help_text="1: list only the archived studies")

    @extend_schema(parameters=[Filter], responses={200: StudyOutput(many=True), **errors(400)})
    def get(self, request):
        query = self.Filter(data=request.query_params)
        query.is_valid(raise_exception=True)
        studies = selectors.study_list(user=request.user, archived=query.validated_data["archived"])
        return Response([study_data(request, study) for study in studies])

    @extend_schema(request=StudySettings, responses={201: StudyOutput, **errors(400, 409)})
    def post(self, request):
        data = StudySettings(data=request.data)
        data.is_valid(raise_exception=True)
        study = study_services.study_create(owner=request.user, **_settings(data.validated_data))
        return Response(study_data(request, study), status=status.HTTP_201_CREATED)


class StudyDeleteInput(serializers.Serializer):
    confirm = serializers.CharField(help_text="the study's slug, to confirm (also accepted as ?confirm=<slug>)")


class StudyDeleteOutput(serializers.Serializer):
    deleted = serializers.SlugField(help_text="the slug of the deleted study")
    counts = inline_serializer("StudyDeleteCounts", {
        "stimuli": serializers.IntegerField(), "variants": serializers.IntegerField(),
        "files": serializers.IntegerField(help_text="stored files deleted (those a clone still uses stay)"),
        "explanation_jobs_kept": serializers.IntegerField(help_text="jobs of its images another study uses, kept"),
        "explanation_jobs_deleted": serializers.IntegerField(), "rows": serializers.IntegerField(),
    })


class StudyApi(ResearcherApi):
    """Read a study; change its settings (all while a draft; see `editable_fields` once launched);
    delete a draft (owner only)."""

    @extend_schema(responses={200: StudyOutput, **errors(404)})
    def get(self, request, slug: str):
        return Response(study_data(request, selectors.study_get(user=request.user, slug=slug)))

    @extend_schema(request=StudySettings(partial=True), responses={200: StudyOutput, **errors(400, 403, 404, 409)})
    def patch(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug, need="edit")
        data = StudySettings(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        study = study_services.study_update(study=study, **_settings(data.validated_data))
        return Response(study_data(request, study))

    @extend_schema(
        request=StudyDeleteInput, responses={200: StudyDeleteOutput, **errors(400, 403, 404, 409)},
        description="Delete a draft that was never launched, with its stimuli and their files, for good (owner "
        "only). Confirm with the study's slug: body {\"confirm\": \"<slug>\"} or ?confirm=<slug>. A launched "
        "study answers 409: close it and archive it instead.",
    )
    def delete(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug, need="owner")
        body = request.data if isinstance(request.data, dict) else {}
        confirm = body.get("confirm", request.query_params.get("confirm", ""))
        counts = study_services.study_delete(study=study, actor=request.user, confirm=str(confirm))
        return Response(StudyDeleteOutput({"deleted": slug, "counts": counts}).data)


def _lifecycle_api(service, doc: str):
    class LifecycleApi(ResearcherApi):
        @extend_schema(request=None, responses={200: StudyOutput, **errors(400, 403, 404, 409)}, description=doc)
        def post(self, request, slug: str):
            study = selectors.study_get(user=request.user, slug=slug, need="edit")
            return Response(study_data(request, service(study=study)))

    LifecycleApi.__doc__ = doc
    LifecycleApi.__name__ = LifecycleApi.__qualname__ = f"Study{service.__name__.split('_')[-1].title()}Api"
    return LifecycleApi


StudyLaunchApi = _lifecycle_api(
    study_services.study_launch,
    "Launch a draft: it goes live, its design freezes and its explanation jobs are queued (400 without stimuli).",
)
StudyPauseApi = _lifecycle_api(study_services.study_pause, "Pause a live study: no new participants or trials.")
StudyResumeApi = _lifecycle_api(study_services.study_resume, "Resume a paused study.")
StudyCloseApi = _lifecycle_api(study_services.study_close, "Close a live or paused study for good; results stay.")


class StudyArchiveApi(ResearcherApi):
    """Archive a closed study (owner only): hidden from GET /studies/ (listed with ?archived=1), still
    readable at its URL, its data kept; participants see a closed study. 409 unless closed."""

    @extend_schema(request=None, responses={200: StudyOutput, **errors(403, 404, 409)})
    def post(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug, need="owner")
        return Response(study_data(request, study_services.study_archive(study=study, actor=request.user)))


class StudyRestoreApi(ResearcherApi):
    """Bring an archived study back into the list (owner only; it stays closed). 409 unless archived."""

    @extend_schema(request=None, responses={200: StudyOutput, **errors(403, 404, 409)})
    def post(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug, need="owner")
        return Response(study_data(request, study_services.study_restore(study=study, actor=request.user)))


class StudyCloneApi(ResearcherApi):
    """Copy a study you can see (settings and stimuli) into a new draft that you own."""

    class Input(serializers.Serializer):
        slug = serializers.SlugField(max_length=80, required=False, allow_blank=True)
        title = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(request=Input, responses={201: StudyOutput, **errors(400, 404, 409)})
    def post(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        clone = study_services.study_clone(study=study, owner=request.user, **data.validated_data)
        return Response(study_data(request, clone), status=status.HTTP_201_CREATED)


# --- progress and results -----------------------------------------------------------------------


class ProgressOutput(serializers.Serializer):
    status = serializers.CharField()
    participants = inline_serializer("ParticipantCounts", {
        n: serializers.IntegerField() for n in ("started", "active", "completed", "excluded")
    })
    responses = inline_serializer("ResponseTotals", {
        "done": serializers.IntegerField(help_text="responses of included participants, each stimulus and kind capped at its target"),
        "target": serializers.IntegerField(),
        "fraction": serializers.FloatField(allow_null=True),
    })
    stimuli = inline_serializer("StimulusProgress", {
        "id": serializers.IntegerField(), "name": serializers.CharField(), "condition": serializers.CharField(),
        "responses": serializers.IntegerField(), "by_task_kind": serializers.DictField(child=serializers.IntegerField()),
        "target": serializers.IntegerField(help_text="participants per stimulus x task kinds"),
    }, many=True)
    jobs = inline_serializer("JobProgress", {
        "total": serializers.IntegerField(),
        "by_status": serializers.DictField(child=serializers.IntegerField(), help_text="pending, running, done, failed"),
        "failed": inline_serializer("FailedJob", {
            "id": serializers.IntegerField(), "model": serializers.CharField(), "method": serializers.CharField(),
            "image_sha256": serializers.CharField(), "attempts": serializers.IntegerField(), "error": serializers.CharField(),
        }, many=True),
    })
    trials_open = serializers.IntegerField(help_text="trials handed out and not yet answered")
    estimate = inline_serializer("CompletionEstimate", {
        "responses_per_hour": serializers.FloatField(allow_null=True),
        "window_hours": serializers.FloatField(allow_null=True, help_text="the rate is measured over the last 24 h, or since launch"),
        "remaining": serializers.IntegerField(),
        "seconds_left": serializers.IntegerField(allow_null=True),
        "completes_at": serializers.DateTimeField(allow_null=True),
    })


class StudyProgressApi(ResearcherApi):
    """Participants, responses per stimulus against the target, explanation jobs, estimated completion."""

    @extend_schema(responses={200: ProgressOutput, **errors(404)})
    def get(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug)
        return Response(ProgressOutput(selectors.study_progress(study=study)).data)


def _summary_fields() -> dict:
    return {
        "n": serializers.IntegerField(help_text="stimuli with a defined value"),
        "mean": serializers.FloatField(allow_null=True),
        "sd": serializers.FloatField(allow_null=True, help_text="sample standard deviation (n - 1)"),
    }


class ScoreGroupOutput(serializers.Serializer):
    model = serializers.CharField()
    method = serializers.CharField()
    params = serializers.DictField()
    task_kind = serializers.CharField()
    metric = serializers.CharField()
    summary = inline_serializer("ScoreSummary", {**_summary_fields(), "undefined": serializers.IntegerField()})
    by_condition = inline_serializer("ConditionSummary", {"condition": serializers.CharField(), **_summary_fields()}, many=True)
    values = inline_serializer("StimulusScore", {
        "stimulus_id": serializers.IntegerField(), "stimulus_name": serializers.CharField(),
        "condition": serializers.CharField(), "value": serializers.FloatField(allow_null=True),
        "n_participants": serializers.IntegerField(),
        "ceiling": serializers.FloatField(allow_null=True, help_text="the stimulus' human ceiling for the metric"),
        "floor": serializers.FloatField(allow_null=True, help_text="the stimulus' human floor for the metric"),
        "normalised": serializers.FloatField(allow_null=True, help_text="(value - floor) / (ceiling - floor); null when undefined"),
        "normalised_note": serializers.CharField(help_text="why `normalised` is null (empty when it is defined)"),
    }, many=True)


class StudyScoresApi(ResearcherApi):
    """Model-vs-human scores grouped by model, method (with parameters), task kind and metric."""

    @extend_schema(responses={200: ScoreGroupOutput(many=True), **errors(404)})
    def get(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug)
        return Response(ScoreGroupOutput(analysis_selectors.study_scores(study=study), many=True).data)


# --- sharing -------------------------------------------------------------------------------------


class ShareOutput(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(StudyShare.Role.choices)
    created_at = serializers.DateTimeField()


class StudySharesApi(ResearcherApi):
    """Who the study is shared with (anyone who can see it may look)."""

    @extend_schema(responses={200: ShareOutput(many=True), **errors(404)})
    def get(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug)
        return Response(ShareOutput(selectors.share_list(study=study), many=True).data)


class StudyShareApi(ResearcherApi):
    """Share with a researcher as `view` or `edit`, or stop sharing (owner only)."""

    class Input(serializers.Serializer):
        role = serializers.ChoiceField(StudyShare.Role.choices)

    @extend_schema(request=Input, responses={200: ShareOutput, **errors(400, 403, 404)})
    def put(self, request, slug: str, username: str):
        study = selectors.study_get(user=request.user, slug=slug, need="owner")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        share = study_services.study_share_set(study=study, username=username, role=data.validated_data["role"])
        return Response(ShareOutput(share).data)

    @extend_schema(responses={204: None, **errors(403, 404)})
    def delete(self, request, slug: str, username: str):
        study = selectors.study_get(user=request.user, slug=slug, need="owner")
        study_services.study_share_remove(study=study, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- what can be computed ------------------------------------------------------------------------


class ExplainOptionsApi(ResearcherApi):
    """The models and explanation methods (with their parameters and defaults) a study may use."""

    class Output(serializers.Serializer):
        default_model = serializers.CharField(help_text="the model of an entry that names none")
        models = inline_serializer("ModelOption", {
            "key": serializers.CharField(), "description": serializers.CharField(),
            "unavailable": serializers.CharField(help_text="why this server cannot run the model (missing package or weights); empty when it can"),
        }, many=True)
        methods = inline_serializer("MethodOption", {
            "key": serializers.CharField(), "label": serializers.CharField(), "version": serializers.CharField(),
            "signed": serializers.BooleanField(help_text="the raw map keeps signs (the comparison map never does)"),
            "paper": serializers.CharField(), "defaults": serializers.DictField(), "docs": serializers.DictField(),
        }, many=True)

    @extend_schema(responses={200: Output, **errors()})
    def get(self, request):
        return Response(self.Output(explain_options()).data)
