"""Averaged human maps, which responses they hold, recipes, scores and reliability. Fields and
constraints only; writes live in `services/`, reads in `selectors.py`."""
from django.db import models
from django.db.models import Q


def human_map_upload_to(instance: "HumanMap", filename: str) -> str:
    return f"humanmaps/{instance.stimulus_id}/{filename}"


class MapRecipe(models.Model):
    """A study's choice of recipe for one task kind, overriding `recipes.recipe_default`. Changing
    it rebuilds that kind's maps (`services.human_map_recipe_set`)."""

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="map_recipes")
    task_kind = models.CharField(max_length=10)
    recipe = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "task_kind"], name="map_recipe_once_per_kind")]


class HumanMap(models.Model):
    """The per-pixel mean of included participants' maps for one stimulus and task kind.

    Stored as a float64 running sum (`sum_file`, H x W .npy, stimulus pixels) and `n_participants`;
    the mean is sum / n. Fixation-based kinds also keep `fixations_file` (H x W int32 counts of points
    per pixel, summed over participants; > 0 is the binary fixation map). `recipe` says how each
    participant's map was made; `sigma_px_min/max` the Gaussian sigmas (stimulus px) actually used
    (equal when every participant saw the stimulus at the same size; null for paint).
    """

    stimulus = models.ForeignKey("annotations.Stimulus", on_delete=models.CASCADE, related_name="human_maps")
    task_kind = models.CharField(max_length=10)
    recipe = models.JSONField()
    n_participants = models.PositiveIntegerField(default=0)
    sum_file = models.FileField(upload_to=human_map_upload_to, blank=True)
    fixations_file = models.FileField(upload_to=human_map_upload_to, blank=True)
    sigma_px_min = models.FloatField(null=True, blank=True)
    sigma_px_max = models.FloatField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stimulus_id", "task_kind"]
        constraints = [
            models.UniqueConstraint(fields=["stimulus", "task_kind"], name="human_map_unique_per_kind"),
        ]


class HumanMapContribution(models.Model):
    """A response folded into a human map, in fold order (`sequence`), exactly once."""

    human_map = models.ForeignKey(HumanMap, on_delete=models.CASCADE, related_name="contributions")
    response = models.ForeignKey("annotations.Response", on_delete=models.CASCADE, related_name="contributions")
    sequence = models.PositiveIntegerField()
    sigma_px = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["human_map_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["human_map", "response"], name="contribution_once"),
            models.UniqueConstraint(fields=["human_map", "sequence"], name="contribution_sequence_unique"),
        ]


class Score(models.Model):
    """One metric of one model map (job: model, method, params) against one human map. `value` is
    null where the metric is undefined (NaN: a constant map, an empty union...) or the model map was
    refused (`note` says why, e.g. NaN values in the stored map)."""

    stimulus = models.ForeignKey("annotations.Stimulus", on_delete=models.CASCADE, related_name="scores")
    job = models.ForeignKey("explain.ExplanationJob", on_delete=models.CASCADE, related_name="scores")
    task_kind = models.CharField(max_length=10)
    metric = models.CharField(max_length=40)
    value = models.FloatField(null=True)
    n_participants = models.PositiveIntegerField()
    note = models.CharField(max_length=300, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stimulus_id", "job_id", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["stimulus", "job", "task_kind", "metric"], name="score_unique"),
        ]


class HumanCeiling(models.Model):
    """Reliability of one stimulus' human map for one metric (ClickMe's split-half processing):
    `ceiling` = mean over repetitions of metric(half A, half B), each half bootstrapped back to n;
    `floor` = the same with half B taken from another stimulus. Null when undefined (n < 2, no other
    stimulus, every repetition NaN). `curve`: [[k, mean, std, repetitions], ...], the split-half
    reliability of two disjoint groups of k participants, k = 1 .. n // 2 (curve metrics only)."""

    stimulus = models.ForeignKey("annotations.Stimulus", on_delete=models.CASCADE, related_name="ceilings")
    task_kind = models.CharField(max_length=10)
    metric = models.CharField(max_length=40)
    ceiling = models.FloatField(null=True)
    ceiling_std = models.FloatField(null=True)
    floor = models.FloatField(null=True)
    floor_std = models.FloatField(null=True)
    n_participants = models.PositiveIntegerField()
    repetitions = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    curve = models.JSONField(default=list, blank=True)
    # Hash of the inputs (parameters, this map's revision, the partners and their revisions): a run
    # skips stimuli whose fingerprint is unchanged.
    fingerprint = models.CharField(max_length=64, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stimulus_id", "task_kind", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["stimulus", "task_kind", "metric"], name="ceiling_unique"),
        ]


class ReliabilityRun(models.Model):
    """Bookkeeping of a study's reliability computation per task kind. Requests bump `requested`;
    a run computes with the value it saw and stores it in `computed`, so bursts of requests collapse
    into one running computation plus at most one follow-up."""

    class Status(models.TextChoices):
        IDLE = "idle"
        RUNNING = "running"
        FAILED = "failed"

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="reliability_runs")
    task_kind = models.CharField(max_length=10)
    requested = models.PositiveIntegerField(default=0)
    computed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IDLE)
    params = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "task_kind"], name="reliability_run_once_per_kind"),
            models.CheckConstraint(condition=Q(computed__lte=models.F("requested")), name="reliability_computed_lte_requested"),
        ]
