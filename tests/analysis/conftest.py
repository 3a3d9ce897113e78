"""Helpers for analysis tests: answered trials of any task kind, and stored model maps.

Responses are written straight to the database here because the analysis side is under test: the
participant-facing submission (annotations) validates and stores them the same way.
"""
from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
from django.core.files.base import ContentFile

from annotations.models import Response, Trial
from annotations.services import participation
from explain.models import ExplanationJob, ModelMap
from explain.study_config import explain_config_resolve, job_target, params_hash


def bubble_payload(clicks, display_width=500, display_height=400):
    return {"display": {"width": display_width, "height": display_height, "dpr": 1}, "pointer_types": ["mouse"],
            "clicks": [[float(x), float(y), float(t)] for x, y, t in clicks], "bubble_radius": 30.0, "blur_sigma": 30.0,
            "viewing_ms": 10000}


def mouse_payload(samples, display_width=500):
    return {"display": {"width": display_width, "height": 400, "dpr": 1}, "pointer_types": ["mouse"],
            "samples": [[float(x), float(y), float(t)] for x, y, t in samples], "window_radius": 30.0, "blur_sigma": 30.0,
            "viewing_ms": 5000}


def answer(participant, stimulus, payload, *, done=True) -> Response:
    """A trial of the participant's kind on this stimulus, answered with the payload."""
    trial = Trial.objects.create(
        participant=participant,
        stimulus=stimulus,
        task_kind=participant.task_kind,
        position=participant.trials.count(),
        status=Trial.Status.DONE if done else Trial.Status.ASSIGNED,
        lease_expires_at="2099-01-01T00:00:00Z",
    )
    return Response.objects.create(trial=trial, client_uuid=uuid.uuid4(), payload=payload)


def new_participant(study):
    return participation.participant_start(study=study)[0]


def npy(array) -> ContentFile:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return ContentFile(buffer.getvalue())


def model_map(stimulus, comparison, *, method="gradcam", model="efficientnet_lite0", params=None, insertion=None, deletion=None):
    """A finished explanation job of the stimulus with this comparison map, as its study asks for it:
    the (model, method, params) is added to the study's models and methods when missing, and the job
    carries that entry's weights and resolved-params hashes and the stimulus' target."""
    params = params or {}
    study = stimulus.study
    entry = {"model": model, "method": method, "params": params}
    if entry not in study.explain_config:
        study.explain_config = [*study.explain_config, entry]
        study.save(update_fields=["explain_config"])
    [(_, weights, _, resolved)] = explain_config_resolve([entry])
    job, _ = ExplanationJob.objects.update_or_create(  # a launched study has its pending job already
        image_sha256=stimulus.sha256, model_key=model, weights_hash=weights, method_key=method, params_hash=params_hash(resolved),
        target=job_target(stimulus), defaults={"params": params, "status": ExplanationJob.Status.DONE},
    )
    comparison = np.asarray(comparison, dtype=np.float32)
    mm = ModelMap(job=job, height=comparison.shape[0], width=comparison.shape[1], target=job.target,
                  predicted_class=job.target, predicted_probability=0.9, target_probability=0.9, method_version="1",
                  device="cpu", seconds=0.1, insertion_auc=insertion, deletion_auc=deletion)
    mm.raw_file.save("raw.npy", npy(comparison), save=False)
    mm.comparison_file.save("comparison.npy", npy(comparison), save=False)
    mm.save()
    return job


@pytest.fixture
def bubble_study(make_study):
    return make_study(task_kinds=["bubble"], launch=True, participants_per_stimulus=20)


# --- a whole scored study ----------------------------------------------------------------------

SPOTS = {"chelsea.png": (0.45, 0.4), "coffee.png": (0.5, 0.45), "astronaut.png": (0.4, 0.3)}


def small_png(filename: str, *, max_side: int = 160, blur: float = 0.0) -> bytes:
    """A real photo shrunk to `max_side` (fast tests), optionally blurred (a condition variant)."""
    from PIL import Image, ImageFilter

    from studyserver.researcher.demo import demo_photo

    image = demo_photo(filename).convert("RGB")
    image.thumbnail((max_side, max_side), Image.BILINEAR)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def blob(stimulus, fx, fy, sigma_fraction=0.12):
    ys, xs = np.mgrid[0 : stimulus.height, 0 : stimulus.width] + 0.5
    sigma = sigma_fraction * max(stimulus.width, stimulus.height)
    return np.exp(-((xs - fx * stimulus.width) ** 2 + (ys - fy * stimulus.height) ** 2) / (2 * sigma**2))


def _paint_near(stimulus, fx, fy, g):
    from tests.conftest import paint_payload, rect_stroke

    cx, cy = fx * stimulus.width + g.normal(0, 3), fy * stimulus.height + g.normal(0, 3)
    half = 0.15 * stimulus.width * g.uniform(0.8, 1.2)
    x0, y0 = max(0, cx - half), max(0, cy - half)
    x1, y1 = min(stimulus.width, cx + half), min(stimulus.height, cy + half)
    return paint_payload([rect_stroke(x0, y0, x1, y1, radius=4)], stimulus.width, stimulus.height)


def _clicks_near(stimulus, fx, fy, g, n=6):
    spread = 0.08 * stimulus.width
    clicks = [(float(np.clip(fx * stimulus.width + g.normal(0, spread), 0, stimulus.width - 1)),
               float(np.clip(fy * stimulus.height + g.normal(0, spread), 0, stimulus.height - 1)), 300.0 * i) for i in range(n)]
    return bubble_payload(clicks, display_width=3 * stimulus.width, display_height=3 * stimulus.height)


def build_scored_study(make_study, *, participants=4, repetitions=3):
    """A launched paint + bubble study: chelsea, coffee, astronaut, a blurred variant of chelsea and
    a motorcycle nobody answered; three model maps per stimulus (gradcam good, rise broad, gradient
    noise), participants' responses, maps, scores and reliability all computed."""
    from analysis import services
    from studyserver.researcher.services import studies

    study = make_study(task_kinds=["paint", "bubble"], participants_per_stimulus=20, photos=())
    for name, label in (("chelsea.png", 285), ("coffee.png", 967), ("astronaut.png", 834), ("motorcycle_left.png", 665)):
        studies.stimulus_create(study=study, data=small_png(name), filename=name, class_index=label)
    chelsea = study.stimuli.get(name="chelsea.png")
    studies.stimulus_create(study=study, data=small_png("chelsea.png", blur=2.0), filename="chelsea-blur.png", class_index=285,
                            condition="gaussian_blur-3", source=chelsea)
    study = studies.study_launch(study=study)
    g = np.random.default_rng(0)
    answered = [s for s in study.stimuli.order_by("id") if not s.name.startswith("motorcycle")]
    for stimulus in answered:
        fx, fy = SPOTS[stimulus.name.replace("-blur", "")]
        for kind in ("paint", "bubble"):
            for _ in range(participants):
                person = new_participant(study)
                if person.task_kind != kind:
                    person.task_kind = kind
                    person.save(update_fields=["task_kind"])
                payload = _paint_near(stimulus, fx, fy, g) if kind == "paint" else _clicks_near(stimulus, fx, fy, g)
                answer(person, stimulus, payload)
            services.human_map_update(stimulus_id=stimulus.pk, task_kind=kind)
    for stimulus in study.stimuli.order_by("id"):
        fx, fy = SPOTS.get(stimulus.name.replace("-blur", ""), (0.5, 0.5))
        model_map(stimulus, blob(stimulus, fx, fy), method="gradcam", insertion=0.8 + 0.05 * g.random(), deletion=0.2 + 0.05 * g.random())
        model_map(stimulus, blob(stimulus, fx + 0.1, fy, 0.3), method="rise", params={"n_masks": 4000}, insertion=0.6, deletion=0.35)
        model_map(stimulus, g.random((stimulus.height, stimulus.width)), method="gradient")
        services.scores_refresh(stimulus_id=stimulus.pk)
    for kind in ("paint", "bubble"):
        services.reliability_params_set(study=study, task_kind=kind, params={"repetitions": repetitions, "curve_repetitions": 2})
        services.reliability_refresh(study_id=study.pk, task_kind=kind)
    return study


@pytest.fixture
def scored_study(make_study):
    return build_scored_study(make_study)
