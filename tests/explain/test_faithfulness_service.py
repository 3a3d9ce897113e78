"""Insertion/deletion of a *stored* map, as the worker computes it after storing the map."""
import numpy as np
import pytest
import torch
from PIL import Image

from explain.faithfulness import insertion_deletion
from explain.models import ExplanationJob
from explain.pipeline import image_to_input
from explain.services import runs
from explain.services.faithfulness import model_map_faithfulness_compute
from explain.zoo import model_load

pytestmark = pytest.mark.django_db


def test_stored_map_gets_the_auc_of_its_comparison_map_once(make_study, settings):
    settings.EXPLAIN_FAITHFULNESS = False  # called directly below, not through the queue
    study = make_study(photos=("chelsea.png",), labels=(285,), launch=True)
    job = ExplanationJob.objects.get(image_sha256=study.stimuli.get().sha256)
    runs.explanation_job_run(job_id=job.pk)
    model_map = job.__class__.objects.get(pk=job.pk).map
    assert model_map.insertion_auc is None

    stored = model_map_faithfulness_compute(model_map_id=model_map.pk)
    model = model_load("efficientnet_lite0")
    with study.stimuli.get().rendition.open("rb") as handle:
        x = image_to_input(Image.open(handle).convert("RGB"), model)
    with model_map.comparison_file.open("rb") as handle:
        comparison = np.load(handle)
    with torch.no_grad():
        insertion, deletion, curves = insertion_deletion(model.net, x, comparison, 285)
    assert stored.insertion_auc == pytest.approx(insertion, abs=1e-9)
    assert stored.deletion_auc == pytest.approx(deletion, abs=1e-9)
    assert stored.deletion_auc < stored.insertion_auc  # Grad-CAM's cat pixels matter to the model
    assert stored.meta["faithfulness"]["insertion"][0] == pytest.approx(curves.insertion[0], abs=1e-6)
    assert stored.meta["params"]  # the map's own metadata is kept

    # Idempotent: a map with both AUCs is left alone, unless forced.
    stored.__class__.objects.filter(pk=stored.pk).update(insertion_auc=0.123)
    assert model_map_faithfulness_compute(model_map_id=model_map.pk).insertion_auc == 0.123
    assert model_map_faithfulness_compute(model_map_id=model_map.pk, force=True).insertion_auc == pytest.approx(insertion, abs=1e-9)
    assert model_map_faithfulness_compute(model_map_id=10**9) is None


def test_storing_a_map_queues_its_faithfulness_on_commit(make_study, settings, django_capture_on_commit_callbacks):
    settings.EXPLAIN_FAITHFULNESS = True
    study = make_study(photos=("chelsea.png",), labels=(285,), launch=True)
    job = ExplanationJob.objects.get(image_sha256=study.stimuli.get().sha256)
    with django_capture_on_commit_callbacks() as callbacks:
        runs.explanation_job_run(job_id=job.pk)
    published = [getattr(c, "args", ()) for c in callbacks]
    assert any(args and getattr(args[0], "name", "") == "explain.tasks.model_map_faithfulness" for args in published), published
