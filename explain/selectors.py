"""Reads of the model side: which explanation jobs are a study's own, and the picture a job explains.

Jobs are keyed by image content (sha256), model + weights, method, parameters and target, not by
study: one job serves every stimulus that asks for exactly it, in any study.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from PIL import Image

from annotations.images import image_rgb
from annotations.models import Stimulus, StimulusRole, Study
from studyserver.errors import InvalidInput, NotFound

from .model_catalogue import DEFAULT_MODEL
from .models import ExplanationJob
from .study_config import explain_config_resolve, job_target, params_hash


def study_jobs(*, study: Study) -> QuerySet[ExplanationJob]:
    """The explanation jobs of this study's main stimuli for its configured models and methods, each
    for the target a main stimulus with its image asks for (`job_target`)."""
    own = (
        study.stimuli.filter(role=StimulusRole.MAIN, sha256=OuterRef("image_sha256"))
        .annotate(job_target=Coalesce("class_index", Value(-1)))
        .filter(job_target=OuterRef("target"))
    )
    wanted = Q(pk__in=[])
    try:
        for model_key, weights, method_key, params in explain_config_resolve(study.explain_config or []):
            wanted |= Q(model_key=model_key, weights_hash=weights, method_key=method_key, params_hash=params_hash(params))
    except InvalidInput:  # a model or method gone from this installation: match by names only
        for entry in study.explain_config or []:
            wanted |= Q(model_key=entry.get("model", DEFAULT_MODEL), method_key=entry.get("method"))
    return ExplanationJob.objects.filter(wanted, Exists(own))


def stimulus_jobs(*, study: Study, stimuli: Iterable[Stimulus], done: bool = False) -> dict[int, list[ExplanationJob]]:
    """Each stimulus' own explanation jobs (by stimulus id, ordered by model, method, id): of its
    image, for one of the study's configured models and methods, and for its target (its label, or -1
    for the top prediction). A job is shared by every stimulus that asks for exactly it, so a map that
    another study made of the same image, for another label or method, is not this study's.
    done: only finished jobs with a stored map."""
    stimuli = list(stimuli)
    jobs = study_jobs(study=study).filter(image_sha256__in={s.sha256 for s in stimuli})
    if done:
        jobs = jobs.filter(status=ExplanationJob.Status.DONE, map__isnull=False)
    by_image_target: dict[tuple[str, int], list[ExplanationJob]] = defaultdict(list)
    for job in jobs.select_related("map").order_by("model_key", "method_key", "id"):
        by_image_target[(job.image_sha256, job.target)].append(job)
    return {s.pk: by_image_target.get((s.sha256, job_target(s)), []) for s in stimuli}


def job_image(job: ExplanationJob) -> Image.Image:
    """The 8-bit RGB picture the job explains: the stored rendition of any stimulus with its image
    (every stimulus with the same sha256 has the same pixels). NotFound when none holds it any more."""
    stimulus = Stimulus.objects.filter(sha256=job.image_sha256).order_by("id").first()
    if stimulus is None:
        raise NotFound(f"no stimulus holds the image {job.image_sha256[:12]} of job {job.pk} any more")
    with stimulus.rendition.open("rb") as handle:
        return image_rgb(Image.open(handle))
