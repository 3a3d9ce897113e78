"""Deleting a draft and archiving a closed study (studyserver.researcher.services.studies), against the real
database and media folder: what goes, what stays (files and explanation jobs another study shares),
who may, and what the audit log records."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from analysis.models import MapRecipe, Score
from annotations.models import Participant, Stimulus, Study
from explain.models import ExplanationJob, ModelMap
from explain.selectors import job_image
from explain.services.jobs import explanation_jobs_create
from studyserver.audit.models import AuditAction, AuditEntry
from studyserver.errors import Conflict, InvalidInput, NotFound
from studyserver.researcher import selectors as researcher_selectors
from studyserver.researcher.services import studies
from tests.analysis.conftest import model_map

pytestmark = pytest.mark.django_db


def media_files(settings) -> set[Path]:
    return {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}


def files_of(stimuli) -> set[Path]:
    return {Path(s.image.path) for s in stimuli} | {Path(s.rendition.path) for s in stimuli}


def delete(study, researcher, capture) -> dict:
    with capture(execute=True):
        return studies.study_delete(study=study, actor=researcher, confirm=study.slug)


# --- delete --------------------------------------------------------------------------------------


def test_deleting_a_draft_takes_its_stimuli_variants_shares_recipes_and_files_and_is_audited(
    make_study, researcher, django_user_model, settings, django_capture_on_commit_callbacks
):
    keep = make_study(photos=("rocket.jpg",), labels=(812,))
    draft = make_study()
    studies.stimulus_variants_create(study=draft, corruptions=["contrast"], severities=[2], seed=3)
    django_user_model.objects.create_user(username="colleague")
    studies.study_share_set(study=draft, username="colleague", role="edit")
    MapRecipe.objects.create(study=draft, task_kind="paint", recipe={"kind": "paint"})
    kept_files = files_of(keep.stimuli.all())
    assert len(media_files(settings)) == 2 + 2 * 4  # rocket + 2 photos and 2 variants, upload + rendition each

    counts = delete(draft, researcher, django_capture_on_commit_callbacks)

    assert not Study.objects.filter(pk=draft.pk).exists()
    assert not Stimulus.objects.filter(study_id=draft.pk).exists() and not MapRecipe.objects.exists()
    assert media_files(settings) == kept_files
    assert counts == {"stimuli": 4, "variants": 2, "files": 8, "explanation_jobs_kept": 0, "explanation_jobs_deleted": 0,
                      "rows": 7}  # the study, 4 stimuli, 1 share, 1 recipe
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.actor_name) == (AuditAction.STUDY_DELETED, researcher, researcher.username)
    assert (entry.study_id, entry.study_slug) == (draft.pk, draft.slug) and draft.slug in entry.target
    assert entry.details == counts


@pytest.mark.parametrize("reach", ["live", "paused", "closed"])
def test_a_launched_study_is_never_deleted(make_study, researcher, reach, settings, django_capture_on_commit_callbacks):
    study = studies.study_launch(study=make_study())
    if reach in ("paused", "closed"):
        study = studies.study_pause(study=study)
    if reach == "closed":
        study = studies.study_close(study=study)
    files = media_files(settings)
    with pytest.raises(Conflict, match=f"is {reach}; only a draft that was never launched can be deleted"):
        delete(study, researcher, django_capture_on_commit_callbacks)
    assert Study.objects.filter(pk=study.pk).exists() and study.stimuli.count() == 2
    assert media_files(settings) == files and not AuditEntry.objects.exists()


def test_deleting_needs_the_slug_typed_and_refuses_a_draft_holding_participants(make_study, researcher, settings):
    study = make_study()
    for typed in ("", "other", study.slug.upper(), f" {study.slug}"):
        with pytest.raises(InvalidInput, match=f"confirm with its slug: confirm={study.slug}"):
            studies.study_delete(study=study, actor=researcher, confirm=typed)
    Participant.objects.create(study=study, task_kind="paint", consented_at=timezone.now())
    with pytest.raises(Conflict, match="holds 1 participant record"):
        studies.study_delete(study=study, actor=researcher, confirm=study.slug)
    assert study.stimuli.count() == 2 and len(media_files(settings)) == 4 and not AuditEntry.objects.exists()


def test_a_clone_and_its_original_keep_the_files_they_share_whichever_is_deleted(
    make_study, researcher, settings, django_capture_on_commit_callbacks
):
    original = make_study()
    clone = studies.study_clone(study=original, owner=researcher)
    files = media_files(settings)
    assert files_of(clone.stimuli.all()) == files  # the copies name the same files

    counts = delete(original, researcher, django_capture_on_commit_callbacks)
    assert counts["files"] == 0 and media_files(settings) == files
    for stimulus in clone.stimuli.all():
        assert stimulus.rendition.open("rb").read(8) == b"\x89PNG\r\n\x1a\n"

    counts = delete(clone, researcher, django_capture_on_commit_callbacks)
    assert counts["files"] == 4 and media_files(settings) == set()


def test_explanation_jobs_another_study_uses_survive_with_their_maps_and_scores(
    make_study, researcher, settings, django_capture_on_commit_callbacks
):
    """A draft's jobs exist when `manage.py explain_study` ran on it; a launched study of the same
    image then shares them (jobs are keyed by image content), so they must outlive the draft."""
    draft = make_study(photos=("chelsea.png", "rocket.jpg"), labels=(285, 812))
    explanation_jobs_create(study=draft)
    cat = draft.stimuli.get(class_index=285)
    shared_job = model_map(cat, np.ones((cat.height, cat.width)))
    rocket = draft.stimuli.get(class_index=812)
    lone_job = model_map(rocket, np.ones((rocket.height, rocket.width)))
    live = studies.study_launch(study=make_study(photos=("chelsea.png",), labels=(285,)))
    live_cat = live.stimuli.get()
    same = ExplanationJob.objects.filter(image_sha256=cat.sha256, model_key=shared_job.model_key, method_key=shared_job.method_key)
    assert list(same) == [shared_job]  # the launch reused it
    score = Score.objects.create(stimulus=live_cat, job=shared_job, task_kind="paint", metric="pcc", value=0.5, n_participants=3)
    shared_files = {Path(shared_job.map.raw_file.path), Path(shared_job.map.comparison_file.path)}
    lone_files = {Path(lone_job.map.raw_file.path), Path(lone_job.map.comparison_file.path)}

    counts = delete(draft, researcher, django_capture_on_commit_callbacks)

    shared_job.refresh_from_db()
    assert ModelMap.objects.filter(job=shared_job).exists()
    assert job_image(shared_job).size == (live_cat.width, live_cat.height)  # read from the live study's stimulus
    assert Score.objects.filter(pk=score.pk).exists()
    assert not ExplanationJob.objects.filter(pk=lone_job.pk).exists()
    files = media_files(settings)
    assert shared_files <= files and not lone_files & files
    assert (counts["explanation_jobs_kept"], counts["explanation_jobs_deleted"]) == (1, 1)
    assert counts["files"] == 4 + 2  # two uploads and renditions, the lone job's two maps


def test_removing_a_stimulus_keeps_the_jobs_another_study_uses(make_study, django_capture_on_commit_callbacks):
    draft = make_study(photos=("chelsea.png",), labels=(285,))
    explanation_jobs_create(study=draft)
    live = studies.study_launch(study=make_study(photos=("chelsea.png",), labels=(285,)))
    job = ExplanationJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        studies.stimulus_remove(study=draft, stimulus=draft.stimuli.get())
    job.refresh_from_db()
    assert job_image(job).size == (live.stimuli.get().width, live.stimuli.get().height)


def test_a_write_waiting_on_a_deleted_draft_answers_not_found(make_study, researcher):
    from studyserver.researcher.demo import demo_photo_bytes

    study = make_study(photos=())
    stale = Study.objects.get(pk=study.pk)
    studies.study_delete(study=study, actor=researcher, confirm=study.slug)
    with pytest.raises(NotFound, match="no longer exists"):
        studies.stimulus_create(study=stale, data=demo_photo_bytes("coffee.png"), filename="c.png")
    with pytest.raises(NotFound, match="no longer exists"):
        studies.study_update(study=stale, title="x")


# --- archive and restore -------------------------------------------------------------------------


def closed(make_study):
    return studies.study_close(study=studies.study_launch(study=make_study()))


def test_archiving_hides_a_closed_study_from_the_lists_keeps_everything_and_restore_brings_it_back(
    make_study, researcher
):
    study, other = closed(make_study), make_study()
    rows_before = (study.stimuli.count(), ExplanationJob.objects.count())

    archived = studies.study_archive(study=study, actor=researcher)

    assert archived.status == "closed" and archived.archived_at is not None
    assert list(researcher_selectors.study_list(user=researcher)) == [other]
    assert list(researcher_selectors.study_list(user=researcher, archived=True)) == [study]
    assert researcher_selectors.study_get(user=researcher, slug=study.slug) == study  # still reachable
    assert (study.stimuli.count(), ExplanationJob.objects.count()) == rows_before

    restored = studies.study_restore(study=study, actor=researcher)
    assert restored.archived_at is None and restored.status == "closed"
    assert set(researcher_selectors.study_list(user=researcher)) == {study, other}
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "study_slug", "actor_name"))
    assert actions == [("study_archived", study.slug, researcher.username), ("study_restored", study.slug, researcher.username)]


def test_only_a_closed_study_is_archived_and_only_an_archived_one_restored(make_study, researcher):
    draft, live = make_study(), studies.study_launch(study=make_study())
    with pytest.raises(Conflict, match="only a closed study can be archived; a draft can be deleted instead"):
        studies.study_archive(study=draft, actor=researcher)
    with pytest.raises(Conflict, match="is live; only a closed study can be archived; close it first"):
        studies.study_archive(study=live, actor=researcher)
    study = closed(make_study)
    with pytest.raises(Conflict, match="is not archived"):
        studies.study_restore(study=study, actor=researcher)
    studies.study_archive(study=study, actor=researcher)
    with pytest.raises(Conflict, match="archived already"):
        studies.study_archive(study=study, actor=researcher)
    assert AuditEntry.objects.count() == 1


def test_the_database_refuses_an_archived_study_that_is_not_closed(make_study):
    from django.db import IntegrityError, transaction

    study = make_study()
    with pytest.raises(IntegrityError, match="study_archived_only_when_closed"), transaction.atomic():
        Study.objects.filter(pk=study.pk).update(archived_at=timezone.now())


def test_participants_of_an_archived_study_meet_a_closed_study(make_study, researcher):
    study = closed(make_study)

    def answers():
        entry = Client().get(f"/s/{study.slug}/")
        consent = Client().post(f"/api/v1/studies/{study.slug}/participants/", {"consent": True}, content_type="application/json")
        return entry.status_code, consent.status_code, consent.json()

    as_closed = answers()
    studies.study_archive(study=study, actor=researcher)
    assert answers() == as_closed and as_closed[:2] == (410, 410)


def test_the_django_admin_deletes_no_study_or_stimulus_behind_the_services_back(make_study, django_user_model):
    """Its delete would skip the draft check, the shared jobs, the files and the audit log."""
    admin = django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    study = make_study()
    client = Client()
    client.force_login(admin)
    assert client.post(f"/admin/annotations/study/{study.pk}/delete/", {"post": "yes"}).status_code == 403
    stimulus = study.stimuli.first()
    assert client.post(f"/admin/annotations/stimulus/{stimulus.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"/admin/annotations/study/{study.pk}/change/").status_code == 200
    assert Study.objects.filter(pk=study.pk).exists() and study.stimuli.count() == 2
