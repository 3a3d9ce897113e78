
import pytest

from annotations.models import Stimulus
from explain.models import ExplanationJob
from studyserver.errors import Conflict, InvalidInput
from studyserver.researcher.services import studies

pytestmark = pytest.mark.django_db


def test_stimulus_upload_refuses_non_images_and_stores_nothing(make_study, settings):
    from pathlib import Path

    study = make_study(photos=())
    with pytest.raises(InvalidInput, match="not a readable image"):
        studies.stimulus_create(study=study, data=b"%PDF-1.4 not an image", filename="paper.pdf")
    assert Stimulus.objects.count() == 0
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.*"))


def test_stimulus_upload_refuses_duplicates_and_unknown_classes(make_study):
    from studyserver.researcher.demo import demo_photo_bytes

    study = make_study()
    with pytest.raises(Conflict, match="already a stimulus"):
        studies.stimulus_create(study=study, data=demo_photo_bytes("chelsea.png"), filename="again.png")
    with pytest.raises(InvalidInput, match="unknown ImageNet class"):
        studies.stimulus_create(study=study, data=demo_photo_bytes("rocket.jpg"), filename="r.jpg", class_name="rocket ship")
    with pytest.raises(InvalidInput, match="outside 0..999"):
        studies.stimulus_create(study=study, data=demo_photo_bytes("rocket.jpg"), filename="r.jpg", class_index=1000)
    assert study.stimuli.count() == 2


def test_stimulus_keeps_label_size_and_sha(make_study):
    stimulus = make_study().stimuli.get(name="chelsea.png")
    assert (stimulus.width, stimulus.height) == (451, 300)
    assert stimulus.class_index == 285 and stimulus.class_name == "Egyptian cat"
    assert len(stimulus.sha256) == 64


def test_launch_queues_one_gradcam_job_per_stimulus_and_only_once(make_study):
    study = make_study(launch=True)
    jobs = ExplanationJob.objects.filter(image_sha256__in=study.stimuli.values("sha256"))
    assert jobs.count() == 2
    assert set(jobs.values_list("method_key", "model_key", "status")) == {("gradcam", "efficientnet_lite0", "pending")}
    assert sorted(jobs.values_list("target", flat=True)) == [285, 967]
    with pytest.raises(Conflict):
        studies.study_launch(study=study)
    from explain.services.jobs import explanation_jobs_create

    explanation_jobs_create(study=study)
    assert jobs.count() == 2


def test_launch_without_stimuli_is_refused(make_study):
    with pytest.raises(InvalidInput, match="no stimuli"):
        studies.study_launch(study=make_study(photos=()))




@pytest.mark.parametrize("kinds", [[], ["paint", "paint"], ["draw"], "paint"])
def test_task_kinds_must_be_a_non_empty_list_of_known_kinds(make_study, kinds):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="task_kinds"):
        make_study(task_kinds=kinds)


# --- design, lifecycle, clone, variants, zip import (services) ------------------------------------

import io  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from annotations.corruptions import corrupt_png  # noqa: E402
from annotations.models import Study, StudyShare  # noqa: E402
from annotations.services import stimuli as stimulus_services  # noqa: E402
from tests.annotations.zipfiles import photo_zip, png  # noqa: E402


def media_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_frozen_settings_of_a_live_study_are_refused_by_name(make_study):
    study = make_study(launch=True)
    with pytest.raises(Conflict, match="cannot change any more: consent_text, task_kinds") as info:
        studies.study_update(study=study, consent_text="new", task_kinds=["paint", "bubble"], title="t2")
    assert info.value.code == "frozen" and set(info.value.fields) == {"consent_text", "task_kinds"}
    study.refresh_from_db()
    assert study.title == "Test study"  # nothing changed
    same = studies.study_update(study=study, consent_text=study.consent_text, title="t2", participants_per_stimulus=9)
    assert (same.title, same.participants_per_stimulus) == ("t2", 9)


def test_a_closed_study_keeps_only_its_title_editable(make_study):
    study = studies.study_close(study=make_study(launch=True))
    with pytest.raises(Conflict, match="participants_per_stimulus"):
        studies.study_update(study=study, participants_per_stimulus=20)
    assert studies.study_update(study=study, title="final").title == "final"


def test_draft_edits_are_validated(make_study):
    study = make_study(photos=())
    with pytest.raises(InvalidInput, match="unknown method 'gradcamm'; valid methods: fem, gradcam, gradient,"):
        studies.study_update(study=study, explain_config=[{"method": "gradcamm"}])
    with pytest.raises(InvalidInput, match="bubble.size is not a parameter"):
        studies.study_update(study=study, task_params={"bubble": {"size": 30}})
    with pytest.raises(InvalidInput, match="unknown setting"):
        studies.study_update(study=study, status="live")
    other = make_study(photos=())
    with pytest.raises(Conflict, match="is taken"):
        studies.study_update(study=study, slug=other.slug)
    updated = studies.study_update(study=study, task_kinds=["paint", "bubble"], task_params={"bubble": {"bubble_radius": 25}})
    assert updated.task_params == {"bubble": {"bubble_radius": 25}}


def test_lifecycle_transitions(make_study):
    study = make_study(launch=True)
    study = studies.study_pause(study=study)
    assert study.status == Study.Status.PAUSED
    with pytest.raises(Conflict, match="resume a paused study instead"):
        studies.study_launch(study=study)
    assert studies.study_resume(study=study).status == Study.Status.LIVE
    assert studies.study_close(study=study).status == Study.Status.CLOSED
    for action in (studies.study_pause, studies.study_resume, studies.study_close, studies.study_launch):
        with pytest.raises(Conflict):
            action(study=study)
    with pytest.raises(Conflict, match="only a live study can be paused"):
        studies.study_pause(study=make_study())


def test_clone_copies_settings_stimuli_and_variant_links_into_a_new_draft(
    make_study, django_user_model, settings, django_capture_on_commit_callbacks
):
    study = make_study(task_params={"paint": {"brush_radii": [5, 10, 20]}})
    cat = study.stimuli.get(class_index=285)
    stimulus_services.stimulus_variants_create(study=study, corruptions=["contrast"], severities=[3], seed=1)
    study = studies.study_launch(study=study)
    files_before = set(media_files(settings))
    other = django_user_model.objects.create_user(username="colleague")
    clone = studies.study_clone(study=study, owner=other)
    assert (clone.status, clone.owner, clone.completion_code) == ("draft", other, "")
    assert clone.slug != study.slug and clone.title == "Test study (copy)"
    assert clone.task_params == {"paint": {"brush_radii": [5, 10, 20]}} and clone.explain_config == study.explain_config
    assert sorted(clone.stimuli.values_list("sha256", flat=True)) == sorted(study.stimuli.values_list("sha256", flat=True))
    variant = clone.stimuli.get(condition="contrast-3", source__sha256=cat.sha256)
    assert variant.source.study == clone and variant.source.sha256 == cat.sha256
    assert set(media_files(settings)) == files_before  # the copies name the same files
    # Removing the clone's cat keeps the original study's files.
    with django_capture_on_commit_callbacks(execute=True):
        removed = studies.stimulus_remove(study=clone, stimulus=clone.stimuli.get(sha256=cat.sha256))
    assert len(removed) == 2 and clone.stimuli.count() == 2
    assert set(media_files(settings)) == files_before


def test_removing_a_stimulus_removes_its_variants_and_their_files(make_study, settings, django_capture_on_commit_callbacks):
    study = make_study()
    stimulus_services.stimulus_variants_create(study=study, corruptions=["pixelate"], severities=[1], seed=0)
    assert len(media_files(settings)) == 8
    cat = study.stimuli.get(class_index=285, source__isnull=True)
    with django_capture_on_commit_callbacks(execute=True):
        removed = studies.stimulus_remove(study=study, stimulus=cat)
    assert len(removed) == 2 and study.stimuli.count() == 2
    assert len(media_files(settings)) == 4


def test_sharing_roles(make_study, django_user_model):
    study = make_study(photos=())
    colleague = django_user_model.objects.create_user(username="colleague")
    share = studies.study_share_set(study=study, username="colleague", role="view")
    assert share.role == "view" and list(study.collaborators.all()) == [colleague]
    assert studies.study_share_set(study=study, username="colleague", role="edit").role == "edit"
    assert StudyShare.objects.count() == 1
    with pytest.raises(InvalidInput, match="no researcher named 'nobody'"):
        studies.study_share_set(study=study, username="nobody", role="view")
    with pytest.raises(InvalidInput, match="owns study"):
        studies.study_share_set(study=study, username=study.owner.username, role="edit")
    studies.study_share_remove(study=study, username="colleague")
    from studyserver.errors import NotFound

    with pytest.raises(NotFound):
        studies.study_share_remove(study=study, username="colleague")


def test_variants_are_deterministic_linked_and_reproducible_from_their_fields(make_study):
    first, second = make_study(), make_study()
    made = stimulus_services.stimulus_variants_create(study=first, corruptions=["glass_blur", "pixelate"], severities=[2], seed=7)
    again = stimulus_services.stimulus_variants_create(study=second, corruptions=["glass_blur", "pixelate"], severities=[2], seed=7)
    assert [v.sha256 for v in made] == [v.sha256 for v in again]  # same seed, same bytes
    other = make_study()
    different = stimulus_services.stimulus_variants_create(study=other, corruptions=["glass_blur"], severities=[2], seed=8)
    assert different[0].sha256 != made[0].sha256
    variant = first.stimuli.get(condition="glass_blur-2", source__class_index=285)
    assert (variant.corruption, variant.severity, variant.class_index) == ("glass_blur", 2, 285)
    assert (variant.width, variant.height) == (variant.source.width, variant.source.height)
    with variant.source.rendition.open("rb") as handle:
        pixels = np.asarray(Image.open(handle).convert("RGB"))
    with variant.image.open("rb") as handle:
        assert handle.read() == corrupt_png(pixels, "glass_blur", 2, variant.seed)


def test_variants_refused_for_variants_duplicates_and_live_studies(make_study, settings):
    study = make_study()
    (variant, _) = stimulus_services.stimulus_variants_create(study=study, corruptions=["contrast"], severities=[1], seed=0)
    with pytest.raises(InvalidInput, match=f"not original main stimuli of study {study.slug}: {variant.pk}"):
        stimulus_services.stimulus_variants_create(study=study, corruptions=["contrast"], severities=[2], seed=0, source_ids=[variant.pk])
    with pytest.raises(Conflict, match="exist already: contrast-1"):
        stimulus_services.stimulus_variants_create(study=study, corruptions=["contrast"], severities=[1], seed=0)
    with pytest.raises(InvalidInput, match="unknown corruption 'fog'"):
        stimulus_services.stimulus_variants_create(study=study, corruptions=["fog"], severities=[1], seed=0)
    settings.STIMULUS_VARIANTS_MAX = 3
    with pytest.raises(InvalidInput, match="4 variants of .* at most 3 variants"):
        stimulus_services.stimulus_variants_create(study=study, corruptions=["pixelate"], severities=[1, 2], seed=0)
    settings.STIMULUS_VARIANTS_MAX, settings.STIMULUS_VARIANTS_MAX_PIXELS = 100, 300_000
    with pytest.raises(InvalidInput, match="2 variants of 375300 pixels in all requested; at most 100 variants and 300000"):
        stimulus_services.stimulus_variants_create(study=study, corruptions=["pixelate"], severities=[1], seed=0)
    studies.study_launch(study=study)
    with pytest.raises(Conflict, match="only while it is a draft"):
        stimulus_services.stimulus_variants_create(study=study, corruptions=["pixelate"], severities=[1], seed=0)
    assert study.stimuli.count() == 4


def test_zip_import_creates_everything_in_csv_order(make_study):
    study = make_study(photos=())
    grey = png(80, 60, seed=3)
    made = stimulus_services.stimuli_import_zip(
        study=study, archive=io.BytesIO(photo_zip(extra_rows=["images/grey.png,,grey,images/chelsea.png"], extra_members={"images/grey.png": grey}))
    )
    assert [s.name for s in made] == ["chelsea.png", "coffee.png", "grey.png"]
    assert made[1].class_index == 967 and made[2].source == made[0] and made[2].class_index == 285


def test_zip_import_failing_midway_leaves_no_rows_and_no_files(make_study, settings, monkeypatch):
    """Fault injection: the third image's rendition fails after two stimuli and four files exist."""
    study = make_study(photos=())
    real, calls = stimulus_services._rendition_png, []

    def failing(data):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(data)

    monkeypatch.setattr(stimulus_services, "_rendition_png", failing)
    archive = photo_zip(extra_rows=["images/x.png,1,,"], extra_members={"images/x.png": png()})
    with pytest.raises(OSError, match="disk full"):
        stimulus_services.stimuli_import_zip(study=study, archive=io.BytesIO(archive))
    assert len(calls) == 3
    assert study.stimuli.count() == 0 and media_files(settings) == []


def test_catch_stimuli_need_a_region_inside_the_image(make_study):
    study = make_study(photos=())
    data = png(100, 80)
    with pytest.raises(InvalidInput, match="needs its known_region"):
        studies.stimulus_create(study=study, data=data, filename="c.png", role="catch")
    with pytest.raises(InvalidInput, match="outside the image"):
        studies.stimulus_create(study=study, data=data, filename="c.png", role="catch", known_region=[0, 0, 120, 10])
    with pytest.raises(InvalidInput, match="only for catch and practice stimuli"):
        studies.stimulus_create(study=study, data=data, filename="c.png", known_region=[0, 0, 10, 10])
    made = studies.stimulus_create(study=study, data=data, filename="c.png", role="catch", known_region=[10, 5, 60, 40])
    assert made.known_region == {"boxes": [[10.0, 5.0, 60.0, 40.0]], "polygons": []}
