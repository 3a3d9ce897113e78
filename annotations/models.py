"""Studies, stimuli, participants, trials and responses: fields, constraints and status choices only.

Writes live in `services/`, reads in `selectors.py`.
"""
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .task_params import TaskParamsInvalid, task_params_resolve


class TaskKind(models.TextChoices):
    PAINT = "paint", "Paint what made you recognise the object"
    BUBBLE = "bubble", "BubbleView: click to reveal sharp bubbles"
    MOUSE = "mouse", "SALICON-style mouse-contingent viewing"


def default_task_kinds() -> list[str]:
    return [TaskKind.PAINT.value]


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        LIVE = "live"
        PAUSED = "paused"
        CLOSED = "closed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="studies")
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # One or more of TaskKind's values. Each participant does one kind (between subjects), chosen
    # at consent to balance the kinds; each stimulus gets N participants per kind.
    task_kinds = models.JSONField(default=default_task_kinds)
    participants_per_stimulus = models.PositiveIntegerField(default=10)
    stimuli_per_participant = models.PositiveIntegerField(default=6)
    consent_text = models.TextField(
        default="You are invited to take part in a research study on how people look at images. "
        "We record where you paint or click on each image, and the time you take. "
        "No personal information is collected beyond an anonymous identifier. "
        "You may stop at any time."
    )
    # Extra instructions from the researcher, shown above the built-in instructions of the task kind.
    instructions_text = models.TextField(blank=True, default="")
    completion_code = models.CharField(max_length=64, blank=True)
    redirect_url = models.URLField(blank=True)
    # Task parameters (display size, units, brush sizes, bubble radius, time limits, attention checks):
    # only what the researcher set; annotations.task_params fills in the defaults (docs/tasks.md).
    task_params = models.JSONField(default=dict, blank=True)
    # What the model side computes: [{"model": <key>, "method": <key>, "params": {...}}], checked against
    # explain's catalogues when a researcher sets it (explain.study_config).
    explain_config = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    # Set while a closed study is archived: hidden from the study lists, its data kept, restorable
    # (services.studies.study_archive / study_restore). Only a closed study is ever archived.
    archived_at = models.DateTimeField(null=True, blank=True)
    # Researchers the owner shared the study with, each with a role (see StudyShare).
    collaborators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="StudyShare", related_name="shared_studies", blank=True
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(participants_per_stimulus__gte=1), name="study_participants_per_stimulus_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(stimuli_per_participant__gte=1), name="study_stimuli_per_participant_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(archived_at__isnull=True) | Q(status="closed"), name="study_archived_only_when_closed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slug} ({self.status})"

    def clean(self) -> None:
        kinds = self.task_kinds
        valid = TaskKind.values
        if not isinstance(kinds, list) or not kinds or len(set(kinds)) != len(kinds) or not set(kinds) <= set(valid):
            raise ValidationError({"task_kinds": f"a non-empty list of distinct task kinds from {valid}, got {kinds!r}"})
        try:
            task_params_resolve(self.task_params)
        except TaskParamsInvalid as exc:
            raise ValidationError({"task_params": f"{exc.field}: {exc}"}) from None


class StimulusRole(models.TextChoices):
    MAIN = "main"
    CATCH = "catch"
    PRACTICE = "practice"


def stimulus_upload_to(instance: "Stimulus", filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    if not re.fullmatch(r"[a-z0-9]{1,8}", suffix):  # the stored name is ours: no path or odd bytes
        suffix = "img"
    return f"stimuli/{instance.sha256[:2]}/{instance.sha256}.{suffix}"


def stimulus_rendition_upload_to(instance: "Stimulus", filename: str) -> str:
    return f"renditions/{instance.sha256[:2]}/{instance.sha256}.png"


class Stimulus(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimuli")
    image = models.FileField(upload_to=stimulus_upload_to)  # the uploaded bytes, unchanged (sha256 is theirs)
    # 8-bit RGB PNG that participants and models both see (see annotations.images.image_rendition).
    rendition = models.ImageField(upload_to=stimulus_rendition_upload_to, width_field="width", height_field="height")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    class_index = models.IntegerField(null=True, blank=True)
    class_name = models.CharField(max_length=200, blank=True)
    condition = models.CharField(max_length=64, default="original")
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="variants")
    # main: shown and analysed; catch: an attention check with a known region (not analysed);
    # practice: shown before the trials to learn the task (not analysed).
    role = models.CharField(max_length=10, choices=StimulusRole.choices, default=StimulusRole.MAIN)
    # Catch (required) and practice (optional) stimuli: where the object is, in stimulus px,
    # {"boxes": [[x0, y0, x1, y1]], "polygons": [[[x, y], ...]]} (annotations.regions).
    known_region = models.JSONField(null=True, blank=True)
    # A generated variant (annotations/corruptions.py): corrupt(source rendition, corruption, severity,
    # seed) gives this stimulus's pixels. Empty / null for uploaded images.
    corruption = models.CharField(max_length=40, blank=True)
    severity = models.PositiveSmallIntegerField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "sha256"], name="stimulus_unique_image_per_study"),
            models.CheckConstraint(condition=Q(width__gte=1) & Q(height__gte=1), name="stimulus_positive_size"),
            models.UniqueConstraint(
                fields=["source", "condition"], condition=Q(source__isnull=False), name="stimulus_variant_condition_once"
            ),
            models.CheckConstraint(
                condition=(Q(corruption="") & Q(severity__isnull=True) & Q(seed__isnull=True))
                | (~Q(corruption="") & Q(severity__gte=1) & Q(severity__lte=5) & Q(seed__isnull=False)),
                name="stimulus_variant_fields_together",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"stimulus {self.pk}"


def participant_token() -> str:
    return secrets.token_urlsafe(32)


class Participant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        EXCLUDED = "excluded"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    task_kind = models.CharField(max_length=10, choices=TaskKind.choices)
    token = models.CharField(max_length=64, unique=True, default=participant_token, editable=False)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    external_study_id = models.CharField(max_length=128, blank=True)
    external_session_id = models.CharField(max_length=128, blank=True)
    consented_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    user_agent = models.CharField(max_length=400, blank=True)
    # Screen calibration (degree studies): {"card_width_px", "px_per_cm", "viewing_distance_cm",
    # "px_per_degree", "dpr", "screen": [w, h], "viewport": [w, h]}; CSS px.
    calibration = models.JSONField(null=True, blank=True)
    practice_done_at = models.DateTimeField(null=True, blank=True)
    # Excluded participants (failed attention checks, or by the researcher) keep their raw data;
    # the analysis leaves them out of averaged maps.
    excluded_at = models.DateTimeField(null=True, blank=True)
    exclusion_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "external_id"],
                condition=Q(external_id__isnull=False),
                name="participant_once_per_study",
            ),
        ]

    def __str__(self) -> str:
        return f"participant {self.pk} of {self.study_id}"


class Trial(models.Model):
    class Status(models.TextChoices):
        ASSIGNED = "assigned"
        DONE = "done"
        EXPIRED = "expired"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trials")
    stimulus = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="trials")
    task_kind = models.CharField(max_length=10, choices=TaskKind.choices)
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ASSIGNED)
    assigned_at = models.DateTimeField(auto_now_add=True)
    lease_expires_at = models.DateTimeField()
    # How many times the trial was served (more than 1: the page was reloaded while it was open).
    served_count = models.PositiveIntegerField(default=1)
    # Catch trials only: the check's score (paint IoU, or fraction of points inside) and its verdict.
    catch_score = models.FloatField(null=True, blank=True)
    catch_passed = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["participant_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "stimulus"], name="trial_stimulus_once_per_participant"),
            models.UniqueConstraint(fields=["participant", "position"], name="trial_position_unique"),
        ]
        indexes = [models.Index(fields=["stimulus", "task_kind", "status"])]


class Response(models.Model):
    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="response")
    client_uuid = models.UUIDField(unique=True)
    payload = models.JSONField()
    started_at_ms = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class StudyShare(models.Model):
    """A study shared by its owner with another researcher.

    view: sees the study, its stimuli, progress and results. edit: also changes its settings and
    stimuli and launches, pauses, resumes or closes it. Only the owner shares, unshares or deletes.
    """

    class Role(models.TextChoices):
        VIEW = "view"
        EDIT = "edit"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_shares")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEW)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study_id", "user_id"]
        constraints = [models.UniqueConstraint(fields=["study", "user"], name="study_share_once_per_user")]

    def __str__(self) -> str:
        return f"{self.study_id} shared with {self.user_id} ({self.role})"
