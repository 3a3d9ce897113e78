"""The two commands of the explain app, through call_command, with real images and a real worker."""
import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from explain.models import ExplanationJob
from explain.services import jobs as job_services
from explain.services import runs
from studyserver.researcher.demo import demo_photo


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_explain_writes_the_raw_map_at_the_image_size_and_one_json_line(tmp_path):
    image = tmp_path / "cat.jpg"
    demo_photo("chelsea.png").convert("RGB").save(image, quality=95)
    out = tmp_path / "maps" / "map.npy"
    printed = run("explain", str(image), "--model", "efficientnet_lite0", "--method", "gradcam", "--out", str(out))
    lines = printed.strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["target"] == line["predicted"] == 285 and 0.6 < line["probability"] < 0.95
    assert line["seconds"] > 0 and line["method"] == "gradcam"
    raw = np.load(out)
    assert raw.dtype == np.float32 and raw.shape == (300, 451)
    assert raw[:, 150:].clip(0).sum() > 2 * raw[:, :150].clip(0).sum()  # on the cat


def test_explain_takes_a_target_and_parameters(tmp_path):
    image = tmp_path / "coffee.png"
    demo_photo("coffee.png").save(image)
    out = tmp_path / "ig.npy"
    line = json.loads(run("explain", str(image), "--method", "integrated_gradients", "--target", "504",
                          "--param", "steps=4", "--param", "baseline=0.5", "--out", str(out)))
    assert line["target"] == 504 and line["predicted"] == 967 and line["params"]["steps"] == 4
    assert line["params"]["baseline"] == 0.5 and np.load(out).shape == (400, 600)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--method", "saliency"], "valid methods: .*gradient"),
        (["--model", "alexnet"], "valid models: .*efficientnet_lite0"),
        (["--param", "steps=4"], "unknown parameter.*steps.*valid: layer"),
        (["--param", "steps"], "must be key=value"),
        (["--target", "1000"], "outside the model's classes"),
        (["--model", "vgg16"], "torchvision"),
    ],
)
def test_explain_refuses_bad_requests_naming_the_valid_choices(tmp_path, extra, message):
    image = tmp_path / "cat.png"
    demo_photo("chelsea.png").save(image)
    with pytest.raises(CommandError, match=message):
        run("explain", str(image), "--out", str(tmp_path / "m.npy"), *extra)
    assert not (tmp_path / "m.npy").exists()


def test_explain_refuses_a_file_that_is_not_an_image(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(CommandError, match="cannot read image"):
        run("explain", str(bad), "--out", str(tmp_path / "m.npy"))


@pytest.mark.django_db
def test_explain_study_no_wait_queues_once(make_study):
    study = make_study(explain_config=[{"model": "efficientnet_lite0", "method": "gradient"},
                                       {"method": "smoothgrad", "params": {"n": 4}}])
    assert "4 jobs (4 new)" in run("explain_study", study.slug, "--no-wait")
    assert "4 jobs (0 new)" in run("explain_study", study.slug, "--no-wait")
    assert ExplanationJob.objects.filter(image_sha256__in=study.stimuli.values("sha256")).count() == 4
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        run("explain_study", "nope", "--no-wait")


@pytest.mark.django_db
def test_a_job_that_cannot_succeed_records_its_error(make_study):
    study = make_study(photos=("chelsea.png",), labels=(285,))
    (job,) = job_services.explanation_jobs_create(study=study)
    ExplanationJob.objects.filter(pk=job.pk).update(params={"layers": "x"})
    runs.explanation_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "valid: layer" in job.error and job.finished_at is not None


@pytest.mark.worker
@pytest.mark.slow
def test_explain_study_waits_for_a_real_worker_and_never_recomputes(celery_worker_process, make_study):
    study = make_study(photos=("coffee.png",), labels=(967,), explain_config=[{"method": "gradient"}])
    printed = run("explain_study", study.slug, "--timeout", "300", "--interval", "0.5")
    assert "1 jobs (1 new)" in printed and "1/1 (1 done, 0 failed)" in printed
    job = ExplanationJob.objects.get(image_sha256=study.stimuli.get().sha256)
    assert job.status == "done" and job.attempts == 1 and job.map.predicted_class == 967
    printed = run("explain_study", study.slug, "--timeout", "60")
    assert "1 jobs (0 new)" in printed
    job.refresh_from_db()
    assert job.attempts == 1  # done jobs are not run again


@pytest.mark.parametrize(
    "config,message",
    [
        ([{"method": "gradient", "modle": "x"}], "unknown field.*modle.*valid: model, method, params"),
        ([{"method": "smoothgrad", "params": {"samples": 3}}], "unknown parameter.*samples.*valid: n, noise, seed"),
        ([{"method": "guided_gradcam", "model": "resnet50"}], "torchvision"),
        ([{"method": "xyz"}], "valid methods"),
        (["gradcam"], "must be an object"),
    ],
)
def test_a_study_explain_config_is_checked_naming_the_valid_choices(config, message):
    from explain.study_config import explain_config_resolve
    from studyserver.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        explain_config_resolve(config)
