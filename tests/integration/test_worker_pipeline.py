"""The whole chain on the real stack: PostgreSQL, Redis and a real Celery worker process."""
import uuid

import numpy as np
import pytest

from analysis import services as analysis_services
from analysis.models import HumanMap, Score
from analysis.scoring import MAP_METRICS
from annotations.services import participation
from explain.models import ExplanationJob, ModelMap
from studyserver.storage import array_load
from tests.conftest import paint_payload, rect_stroke, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_launch_then_responses_flow_through_a_real_worker(celery_worker_process, make_study):
    study = make_study(launch=True)
    jobs = ExplanationJob.objects.filter(image_sha256__in=study.stimuli.values("sha256"))
    wait_for(lambda: jobs.filter(status="done").count() == 2, timeout=240, what="2 Grad-CAM jobs", process=celery_worker_process)
    for job in jobs.select_related("map"):
        stimulus = study.stimuli.get(sha256=job.image_sha256)
        raw = array_load(job.map.raw_file)
        assert raw.shape == (stimulus.height, stimulus.width) and raw.dtype == np.float32
        assert job.map.predicted_class == stimulus.class_index
        assert job.map.target == stimulus.class_index and job.map.predicted_probability > 0.5
        assert job.attempts == 1
    # The worker then scores each map's faithfulness (insertion/deletion, the RISE authors' game).
    maps = ModelMap.objects.filter(job__in=jobs)
    wait_for(lambda: maps.filter(insertion_auc__isnull=False, deletion_auc__isnull=False).count() == 2, timeout=600,
             what="insertion/deletion of 2 maps", process=celery_worker_process)
    for model_map in maps:
        assert 0 <= model_map.deletion_auc < model_map.insertion_auc <= 1  # Grad-CAM points at the object
        assert len(model_map.meta["faithfulness"]["insertion"]) == 225  # 224 steps of 224 pixels, and the start

    # Two participants paint; the worker folds their masks into the averaged maps and scores them.
    cat = study.stimuli.get(class_index=285)
    for strokes in ([rect_stroke(150, 40, 400, 290, radius=10)], [rect_stroke(150, 40, 275, 290, radius=10)]):
        participant, _ = participation.participant_start(study=study)
        for _ in range(2):
            trial = participation.trial_next_assign(participant=participant)
            participation.response_submit(participant=participant, trial_id=trial.pk, client_uuid=uuid.uuid4(), payload=paint_payload(strokes))
    human = HumanMap.objects.filter(stimulus=cat, task_kind="paint")
    wait_for(lambda: human.filter(n_participants=2).exists(), timeout=60, what="human map of 2", process=celery_worker_process)
    wait_for(lambda: Score.objects.filter(stimulus=cat, n_participants=2).count() == len(MAP_METRICS), timeout=60,
             what=f"{len(MAP_METRICS)} scores", process=celery_worker_process)

    mean = analysis_services.human_map_mean(human.get())
    assert mean[150, 200] == 1.0  # both painted here
    assert mean[150, 350] == 0.5  # only the first
    assert mean[:, :130].sum() == 0 and mean[:20, :].sum() == 0
    scores = {s.metric: s.value for s in Score.objects.filter(stimulus=cat)}
    assert set(scores) == set(MAP_METRICS)  # paint: no fixations, so no NSS or AUC
    assert all(v is not None for v in scores.values())
    assert all(-1 <= scores[m] <= 1 for m in ("pcc", "sim", "spearman", "iou_top10", "iou_top30")) and scores["kld"] >= 0
    assert scores["pcc"] > 0  # Grad-CAM looks at the cat, and so did the painters

    # The incremental map equals a rebuild from raw responses, bit for bit.
    before = array_load(human.get().sum_file)
    rebuilt = analysis_services.human_map_rebuild(stimulus_id=cat.pk, task_kind="paint")
    assert np.array_equal(array_load(rebuilt.sum_file), before)
