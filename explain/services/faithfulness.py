"""Insertion and deletion AUC of a stored model map, computed on the worker (RISE's game: docs/explain-perturbation.md).

Queued on the `explain` queue when a map is stored (settings.EXPLAIN_FAITHFULNESS, on by default),
and callable for any stored map. It scores the map's *comparison* map for the map's target class on
the model that made it, with `explain.faithfulness.insertion_deletion` (the RISE authors' game). The
AUCs land on ModelMap.insertion_auc / deletion_auc, the two curves in ModelMap.meta["faithfulness"].
Idempotent: a map that has both AUCs is left alone unless `force`.
"""
from __future__ import annotations

import time

import torch
from django.db import transaction

from studyserver.storage import array_load

from ..faithfulness import insertion_deletion
from ..models import ModelMap
from ..pipeline import image_to_input
from ..selectors import job_image
from ..zoo import model_load

FAITHFULNESS_VERSION = "1"


def model_map_faithfulness_compute(*, model_map_id: int, force: bool = False) -> ModelMap | None:
    """Compute and store insertion/deletion AUC for one ModelMap; None when the map is gone."""
    model_map = ModelMap.objects.select_related("job").filter(pk=model_map_id).first()
    if model_map is None:
        return None
    if not force and model_map.insertion_auc is not None and model_map.deletion_auc is not None:
        return model_map
    model = model_load(model_map.job.model_key)
    image = job_image(model_map.job)
    saliency = array_load(model_map.comparison_file)  # refuses a map holding NaN
    started = time.perf_counter()
    with torch.no_grad():
        insertion, deletion, curves = insertion_deletion(model.net, image_to_input(image, model), saliency, model_map.target)
    with transaction.atomic():
        model_map = ModelMap.objects.select_for_update().get(pk=model_map.pk)
        model_map.insertion_auc = insertion
        model_map.deletion_auc = deletion
        model_map.meta = {
            **model_map.meta,
            "faithfulness": {
                "version": FAITHFULNESS_VERSION,
                "map": "comparison",
                "step": curves.step,
                "insertion": [round(float(v), 6) for v in curves.insertion],
                "deletion": [round(float(v), 6) for v in curves.deletion],
                "seconds": round(time.perf_counter() - started, 3),
            },
        }
        model_map.save(update_fields=["insertion_auc", "deletion_auc", "meta"])
    return model_map
