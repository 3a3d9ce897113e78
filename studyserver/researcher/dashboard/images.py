"""The gallery's pictures as PNG (login required, studies the user may see): the stimulus, each
averaged human map and each model map as a heat map over the image, and their top regions."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from PIL import Image

from analysis import services
from analysis.models import HumanMap
from analysis.overlays import overlay_png, regions_png
from annotations.models import Stimulus
from explain.selectors import stimulus_jobs
from studyserver.storage import array_load

from .access import stimulus_or_404


def _png(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


def _rendition(stimulus: Stimulus) -> Image.Image:
    with stimulus.rendition.open("rb") as handle:
        return Image.open(handle).convert("RGB")


def _human_mean(stimulus: Stimulus, task_kind: str):
    human_map = HumanMap.objects.filter(stimulus=stimulus, task_kind=task_kind).first()
    return services.human_map_mean(human_map) if human_map else None


def _model_map(stimulus: Stimulus, job_id: int):
    own = stimulus_jobs(study=stimulus.study, stimuli=[stimulus], done=True)[stimulus.pk]
    job = next((job for job in own if job.pk == job_id), None)
    if job is None:
        raise Http404("no finished map")
    try:
        return array_load(job.map.comparison_file)
    except ValueError:  # NaN in the stored map: shown as missing (the scores say why)
        return None


@login_required
def stimulus_png(request, stimulus_id: int):
    stimulus = stimulus_or_404(request, stimulus_id)
    return _png(overlay_png(_rendition(stimulus), None))


@login_required
def human_map_png(request, stimulus_id: int, task_kind: str):
    stimulus = stimulus_or_404(request, stimulus_id)
    return _png(overlay_png(_rendition(stimulus), _human_mean(stimulus, task_kind)))


@login_required
def human_regions_png(request, stimulus_id: int, task_kind: str):
    stimulus = stimulus_or_404(request, stimulus_id)
    return _png(regions_png(_rendition(stimulus), _human_mean(stimulus, task_kind)))


@login_required
def model_map_png(request, stimulus_id: int, job_id: int):
    stimulus = stimulus_or_404(request, stimulus_id)
    return _png(overlay_png(_rendition(stimulus), _model_map(stimulus, job_id)))


@login_required
def model_regions_png(request, stimulus_id: int, job_id: int):
    stimulus = stimulus_or_404(request, stimulus_id)
    return _png(regions_png(_rendition(stimulus), _model_map(stimulus, job_id)))
