"""The audit log's one table. Fields and choices only; entries are written by `services.audit_record`."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditAction(models.TextChoices):
    STUDY_DELETED = "study_deleted", "study deleted"
    STUDY_ARCHIVED = "study_archived", "study archived"
    STUDY_RESTORED = "study_restored", "study restored"
    PARTICIPANT_ERASED = "participant_erased", "participant's data erased"
    PARTICIPANT_EXCLUDED = "participant_excluded", "participant excluded"
    PARTICIPANT_INCLUDED = "participant_included", "participant included again"
    PARTICIPANT_WITHDREW = "participant_withdrew", "participant withdrew"
    RESEARCHER_CREATED = "researcher_created", "researcher created"
    RESEARCHER_DEACTIVATED = "researcher_deactivated", "researcher deactivated"
    RESEARCHER_ACTIVATED = "researcher_activated", "researcher activated"
    RESEARCHER_PASSWORD_SET = "researcher_password_set", "researcher's password set"
    RESEARCHER_TOKEN_CREATED = "researcher_token_created", "researcher's API token made"


class AuditEntry(models.Model):
    """One thing done, by whom, when, to what.

    actor: the user who did it; null for the system (automatic exclusions) and for `manage.py`
    commands, and once the user is deleted. actor_name: the actor's username copied as text (it
    survives the user's deletion), or "system" / "manage.py". study_id, study_slug: the study
    concerned, copied (no foreign key: the entry outlives the study); null / empty when none.
    target: what was acted on, for a human ("participant 42", "study pilot-3 (draft)").
    details: a flat JSON object of counts, flags and short reasons; never payloads or personal data.
    """

    at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    study_id = models.BigIntegerField(null=True, blank=True)
    study_slug = models.CharField(max_length=80, blank=True)
    target = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["study_id", "at"], name="audit_study_at"),
            models.Index(fields=["action", "at"], name="audit_action_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"
