"""Explanation work batched across stimuli: one forward/backward over several images for the
single-pass methods, equal image by image to the one-image path; jobs queued and run in groups."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from annotations.models import Stimulus
from explain import tasks
from explain.methods.batching import batch_size_limited
from explain.models import ExplanationJob, ModelMap
from explain.pipeline import InvalidTarget, explain_image, explain_images
from explain.selectors import job_image
from explain.services import jobs as job_services
from explain.services import runs
from explain.zoo import ZooModel, model_load
from studyserver.researcher.demo import demo_photo
from studyserver.storage import array_load
from tests.conftest import wait_for
from tests.explain.nets import assert_close_up_to_gate_flips, small_net

BATCHED = ["gradient", "guided_backprop", "gradcam", "guided_gradcam", "fem"]


@pytest.fixture(scope="module")
def lite0() -> ZooModel:
    return model_load("efficientnet_lite0")


@pytest.fixture(scope="module")
def tiny_model() -> ZooModel:
    return ZooModel(
        key="tiny", net=small_net(seed=3), input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        class_names=tuple(f"class {i}" for i in range(10)), weights_hash="0" * 16, device=torch.device("cpu"),
    )


def lite0_images() -> list[Image.Image]:
    """Three photos at three different resolutions."""
    return [demo_photo("chelsea.png"), demo_photo("coffee.png"), demo_photo("motorcycle_left.png").resize((300, 200))]


def tiny_images() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)) for h, w in ((40, 52), (32, 32), (61, 45))]


class RowCounter:
    """The batch sizes the network is called with (a forward hook; it changes nothing)."""

    def __init__(self, net):
        self.sizes: list[int] = []
        self.handle = net.register_forward_hook(lambda _m, inputs, _o: self.sizes.append(inputs[0].shape[0]))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


def assert_same(batched, single, images, targets):
    assert len(batched) == len(single) == len(images)
    for one, many, image, target in zip(single, batched, images, targets):
        assert many.raw.shape == many.comparison.shape == (image.height, image.width)
        assert many.target == one.target == (one.predicted if target is None else target)
        assert many.predicted == one.predicted
        assert many.predicted_probability == pytest.approx(one.predicted_probability, abs=1e-5)
        assert many.target_probability == pytest.approx(one.target_probability, abs=1e-5)
        for a, b in ((many.raw, one.raw), (many.comparison, one.comparison)):
            assert_close_up_to_gate_flips(a, b)  # float rounding, and ReLU6 gates it can flip
        assert many.params == one.params and many.method_version == one.method_version and many.meta == one.meta


@pytest.mark.parametrize("key", BATCHED)
def test_batched_equals_the_one_image_path_on_lite0(lite0, key):
    images, targets = lite0_images(), [285, None, 3]  # a labelled class, the top prediction, another class
    with RowCounter(lite0.net) as rows:
        batched = explain_images(lite0, images, key, targets=targets)
    assert max(rows.sizes) == 3  # the three stimuli went through the network together
    single = [explain_image(lite0, image, key, target=target) for image, target in zip(images, targets)]
    assert_same(batched, single, images, targets)
    assert batched[1].predicted == 967 and batched[2].target == 3  # each its own target


def test_a_fallback_method_runs_image_by_image_on_lite0(lite0):
    images, targets, params = lite0_images()[:2], [None, 285], {"window": 112, "stride": 112}
    with RowCounter(lite0.net) as rows:
        batched = explain_images(lite0, images, "occlusion", targets=targets, params=params)
    assert max(rows.sizes) < 2 * 4  # never both images' windows in one pass
    single = [explain_image(lite0, image, "occlusion", target=target, params=params) for image, target in zip(images, targets)]
    assert_same(batched, single, images, targets)


@pytest.mark.parametrize("key,params", [*((key, {}) for key in BATCHED), ("smoothgrad", {"n": 3}), ("integrated_gradients", {"steps": 4})])
def test_batched_equals_the_one_image_path_on_a_seeded_net(tiny_model, key, params):
    images, targets = tiny_images(), [None, 4, None]
    batched = explain_images(tiny_model, images, key, targets=targets, params=params)
    single = [explain_image(tiny_model, image, key, target=t, params=params) for image, t in zip(images, targets)]
    assert_same(batched, single, images, targets)


def test_a_batch_never_exceeds_the_device_rows(tiny_model):
    images = tiny_images() * 2
    with batch_size_limited(4), RowCounter(tiny_model.net) as rows:
        batched = explain_images(tiny_model, images, "gradcam")
    assert max(rows.sizes) == 4 and sum(rows.sizes) == 2 * len(images)  # 4 + 2 rows, a clean and a Grad-CAM pass each
    assert_same(batched, [explain_image(tiny_model, image, "gradcam") for image in images], images, [None] * len(images))


def test_a_target_outside_the_classes_is_refused_before_any_work(tiny_model):
    with RowCounter(tiny_model.net) as rows, pytest.raises(InvalidTarget, match="outside the model's classes 0..9"):
        explain_images(tiny_model, tiny_images(), "gradient", targets=[1, 10, 2])
    assert rows.sizes == []


# --- jobs: queued in groups, run in one task ----------------------------------------------------

THREE = {"photos": ("chelsea.png", "coffee.png", "motorcycle_left.png"), "labels": (285, 967, 665)}


def queued(callbacks) -> list[tuple[str, tuple]]:
    """(task name, args) of each publish queued on commit."""
    return [(str(callback.args[0]), callback.args[1]) for callback in callbacks]


@pytest.mark.django_db
def test_launch_queues_new_jobs_in_tasks_of_the_setting(make_study, settings, django_capture_on_commit_callbacks):
    settings.EXPLAIN_STIMULI_PER_TASK = 2
    study = make_study(**THREE, explain_config=[{"method": "gradcam"}, {"method": "gradient"}])
    with django_capture_on_commit_callbacks() as callbacks:
        jobs = job_services.explanation_jobs_create(study=study)
    ids = {key: [job.pk for job in jobs if job.method_key == key] for key in ("gradcam", "gradient")}
    assert queued(callbacks) == [
        ("explain.tasks.explanation_jobs_execute", (ids["gradcam"][:2],)),
        ("explain.tasks.explanation_job_execute", (ids["gradcam"][2],)),
        ("explain.tasks.explanation_jobs_execute", (ids["gradient"][:2],)),
        ("explain.tasks.explanation_job_execute", (ids["gradient"][2],)),
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        again = job_services.explanation_jobs_create(study=study)
    assert callbacks == [] and [job.pk for job in again] == [job.pk for job in jobs]

    settings.EXPLAIN_STIMULI_PER_TASK = 1  # one task per job, as before batching
    study.explain_config = [{"method": "fem"}]
    study.save()
    with django_capture_on_commit_callbacks() as callbacks:
        fem = job_services.explanation_jobs_create(study=study)
    assert queued(callbacks) == [("explain.tasks.explanation_job_execute", (job.pk,)) for job in fem]


def jobs_created(make_study, django_capture_on_commit_callbacks, **config) -> list[ExplanationJob]:
    study = make_study(**THREE, explain_config=[{"method": "gradcam", **config}])
    with django_capture_on_commit_callbacks():  # captured, not run: the tests run the jobs themselves
        return job_services.explanation_jobs_create(study=study)


def assert_stored_as_one_image_path(job: ExplanationJob, model: ZooModel):
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 1 and job.error == ""
    one = explain_image(model, job_image(job), job.method_key, target=job.target, params=job.params)
    raw = array_load(job.map.raw_file)
    assert np.allclose(raw, one.raw, rtol=1e-4, atol=1e-5 * float(np.abs(one.raw).max()))
    assert job.map.target == job.target and job.map.predicted_class == one.predicted


@pytest.mark.django_db
def test_one_bad_job_in_a_batch_fails_alone(make_study, lite0, django_capture_on_commit_callbacks):
    jobs = jobs_created(make_study, django_capture_on_commit_callbacks)
    bad = jobs[1]
    ExplanationJob.objects.filter(pk=bad.pk).update(target=5000)
    tasks.explanation_jobs_execute([job.pk for job in jobs])  # the task, called as a function
    bad.refresh_from_db()
    assert bad.status == "failed" and "InvalidTarget: target class 5000 is outside" in bad.error
    assert bad.finished_at is not None and not ModelMap.objects.filter(job=bad).exists()
    for job in (jobs[0], jobs[2]):
        assert_stored_as_one_image_path(job, lite0)
    tasks.explanation_jobs_execute([job.pk for job in jobs])  # again: the done jobs are not redone
    attempts = dict(ExplanationJob.objects.filter(pk__in=[j.pk for j in jobs]).values_list("pk", "attempts"))
    assert attempts == {jobs[0].pk: 1, bad.pk: 2, jobs[2].pk: 1}  # a failed job is tried again, as one alone is
    assert ModelMap.objects.filter(job__in=jobs).count() == 2


@pytest.mark.django_db
def test_a_transient_error_puts_the_unfinished_jobs_back_then_the_retry_stores_them(
    make_study, lite0, django_capture_on_commit_callbacks
):
    jobs = jobs_created(make_study, django_capture_on_commit_callbacks)
    path = Stimulus.objects.filter(sha256=jobs[2].image_sha256).get().rendition.path
    os.rename(path, path + ".away")  # the file store is briefly unreachable for one stimulus
    try:
        with pytest.raises(FileNotFoundError):
            tasks.explanation_jobs_execute([job.pk for job in jobs])
        for job in jobs:
            job.refresh_from_db()
            assert job.status == "pending" and "FileNotFoundError" in job.error and job.attempts == 1
        with pytest.raises(FileNotFoundError):  # the final attempt records the failure
            runs.explanation_jobs_run(job_ids=[job.pk for job in jobs], final_attempt=True)
        assert set(ExplanationJob.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True)) == {"failed"}
    finally:
        os.rename(path + ".away", path)
    ExplanationJob.objects.filter(pk__in=[j.pk for j in jobs]).update(status="pending", attempts=0)
    tasks.explanation_jobs_execute([job.pk for job in jobs])
    for job in jobs:
        assert_stored_as_one_image_path(job, lite0)


@pytest.mark.django_db
def test_bad_parameters_fail_every_job_of_the_group(make_study, django_capture_on_commit_callbacks):
    jobs = jobs_created(make_study, django_capture_on_commit_callbacks)
    ExplanationJob.objects.filter(pk__in=[j.pk for j in jobs]).update(params={"layers": "x"})
    tasks.explanation_jobs_execute([job.pk for job in jobs])
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "failed" and "valid: layer" in job.error


@pytest.mark.worker
@pytest.mark.slow
def test_a_batch_task_through_a_real_worker(celery_worker_process, make_study, django_capture_on_commit_callbacks):
    jobs = jobs_created(make_study, django_capture_on_commit_callbacks)  # created, their task not sent
    bad = jobs[0]
    ExplanationJob.objects.filter(pk=bad.pk).update(target=5000)
    tasks.explanation_jobs_execute.delay([job.pk for job in jobs])
    finished = ExplanationJob.objects.filter(pk__in=[j.pk for j in jobs], status__in=("done", "failed"))
    wait_for(lambda: finished.count() == 3, timeout=240, what="3 jobs of one batch", process=celery_worker_process)
    bad.refresh_from_db()
    assert bad.status == "failed" and "outside the model's classes" in bad.error
    lite0 = model_load("efficientnet_lite0")
    for job in jobs[1:]:
        assert_stored_as_one_image_path(job, lite0)
    log = celery_worker_process.log_path.read_text(errors="replace")
    assert "explanation_jobs_execute[" in log and "explanation_job_execute[" not in log


@pytest.mark.parametrize("key", BATCHED)
def test_known_targets_take_the_probabilities_from_the_methods_own_forward(tiny_model, key):
    images = tiny_images()
    with RowCounter(tiny_model.net) as rows:
        known = explain_images(tiny_model, images, key, targets=[1, 4, 7])
    assert rows.sizes == [3]  # one pass over the batch: no separate clean forward
    with RowCounter(tiny_model.net) as rows:
        unknown = explain_images(tiny_model, images, key, targets=[None, 4, 7])
    assert rows.sizes == [3, 3]  # the top prediction is needed before the method runs
    with RowCounter(tiny_model.net) as rows:
        single = explain_image(tiny_model, images[0], key, target=1)
    assert rows.sizes == [1]
    for a, b in ((known[0], single), (known[1], unknown[1]), (known[2], unknown[2])):
        assert a.predicted == b.predicted
        assert a.predicted_probability == pytest.approx(b.predicted_probability, abs=1e-6)
        assert a.target_probability == pytest.approx(b.target_probability, abs=1e-6)
