"""Explanation jobs and the model maps they produce. Fields and constraints only."""
from django.db import models
from django.db.models import Q


class ExplanationJob(models.Model):
    """One (image content, model + weights, method, parameters, target) explanation.

    Keyed by content, not by study: the same image in two studies, or a second launch, reuses the job.
    No relation to a stimulus: the worker reads the rendition of any stimulus with the image's sha256
    (they all have the same pixels), so deleting one study's stimulus never touches a job another
    study shares (`selectors.job_image`, `services.jobs.explanation_jobs_prune`).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    image_sha256 = models.CharField(max_length=64)
    model_key = models.CharField(max_length=80)
    weights_hash = models.CharField(max_length=64)
    method_key = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    params_hash = models.CharField(max_length=64)
    # The class explained; -1 means "the model's top prediction" (resolved when the job runs).
    target = models.IntegerField(default=-1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["image_sha256", "model_key", "weights_hash", "method_key", "params_hash", "target"],
                name="explanation_job_unique_key",
            ),
            models.CheckConstraint(condition=Q(target__gte=-1), name="explanation_job_target_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.method_key}/{self.model_key} on {self.image_sha256[:8]} ({self.status})"


def model_map_upload_to(instance: "ModelMap", filename: str) -> str:
    return f"modelmaps/{instance.job.image_sha256[:2]}/{instance.job_id}-{filename}"


class ModelMap(models.Model):
    """The stored result of a job: raw and comparison maps (H x W float32 .npy, stimulus pixels)."""

    job = models.OneToOneField(ExplanationJob, on_delete=models.CASCADE, related_name="map")
    raw_file = models.FileField(upload_to=model_map_upload_to)
    comparison_file = models.FileField(upload_to=model_map_upload_to)
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    target = models.IntegerField()
    predicted_class = models.IntegerField()
    predicted_probability = models.FloatField()
    target_probability = models.FloatField()
    method_version = models.CharField(max_length=20)
    device = models.CharField(max_length=20)
    seconds = models.FloatField()
    # Faithfulness (RISE's insertion/deletion, docs/explain-perturbation.md), computed on the worker; null
    # until computed.
    insertion_auc = models.FloatField(null=True, blank=True)
    deletion_auc = models.FloatField(null=True, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
