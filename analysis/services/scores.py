"""Writes for scores: every finished model map of a stimulus against each of its human maps."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from annotations.models import Stimulus
from explain.selectors import stimulus_jobs
from studyserver.storage import array_load

from ..models import Score
from ..scoring import HumanReference, metric_suite
from ..selectors import human_map_fixations, human_map_mean

log = logging.getLogger(__name__)


@dataclass
class ScoresRefreshed:
    """What a refresh did: rows written, human maps without responses, model maps refused."""

    written: int = 0
    empty_kinds: list[str] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # job id -> reason


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _model_maps(jobs) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    maps, refused = {}, {}
    for job in jobs:
        try:
            maps[job.pk] = array_load(job.map.comparison_file)
        except (ValueError, OSError) as exc:  # NaN/inf in the stored map, a missing file
            refused[job.pk] = f"model map refused: {exc}"[:300]
            log.error("job %s: %s", job.pk, refused[job.pk])
    return maps, refused


@transaction.atomic
def scores_refresh(*, stimulus_id: int) -> ScoresRefreshed:
    """Score every DONE model map of the stimulus' own jobs (its study's models and methods, its
    target: `stimulus_jobs`) against each of its human maps, all metrics of the kind (scoring.py), in
    one upsert. A human map with no included participant loses its scores; a refused model map gets
    null values with the reason in `note`."""
    stimulus = Stimulus.objects.select_related("study").get(pk=stimulus_id)
    jobs = sorted(stimulus_jobs(study=stimulus.study, stimuli=[stimulus], done=True)[stimulus.pk], key=lambda job: job.pk)
    # scores of a job that is not this stimulus' own (another study's label or method on the same image)
    Score.objects.filter(stimulus=stimulus).exclude(job_id__in=[job.pk for job in jobs]).delete()
    model_maps, refused = _model_maps(jobs)
    result = ScoresRefreshed(refused=refused)
    rows = []
    for human_map in stimulus.human_maps.all():
        human = human_map_mean(human_map)
        if human is None:
            result.empty_kinds.append(human_map.task_kind)
            Score.objects.filter(stimulus=stimulus, task_kind=human_map.task_kind).delete()
            continue
        reference = HumanReference.prepare(human, human_map_fixations(human_map))
        names = reference.metric_names
        for job in jobs:
            if job.pk in model_maps:
                values, note = metric_suite(model_maps[job.pk], reference), ""
            else:
                values, note = dict.fromkeys(names), refused[job.pk]
            rows += [
                Score(stimulus=stimulus, job=job, task_kind=human_map.task_kind, metric=name,
                      value=_finite_or_none(values[name]), n_participants=human_map.n_participants, note=note)
                for name in names
            ]
        Score.objects.filter(stimulus=stimulus, task_kind=human_map.task_kind).exclude(metric__in=names).delete()
    if rows:
        Score.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["stimulus", "job", "task_kind", "metric"],
            update_fields=["value", "n_participants", "note", "computed_at"],
        )
    result.written = len(rows)
    return result
