"""Two studies with the same image: each study's scores, report and gallery hold only the model maps
it asked for (its models and methods, its stimulus' label); a job both asked for is computed once
and serves both."""
from __future__ import annotations

import numpy as np
import pytest

from analysis import selectors as analysis_selectors
from analysis import services
from analysis.models import Score
from studyserver.researcher import selectors as researcher_selectors
from studyserver.researcher.dashboard.selectors import study_gallery
from tests.analysis.conftest import answer, model_map, new_participant
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


def _blob(stimulus, x, y):
    ys, xs = np.mgrid[0 : stimulus.height, 0 : stimulus.width] + 0.5
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 40.0**2))


def _painted(study):
    stimulus = study.stimuli.get()
    for _ in range(2):
        answer(new_participant(study), stimulus, paint_payload([rect_stroke(120, 60, 300, 240)]))
    services.human_map_update(stimulus_id=stimulus.pk, task_kind="paint")
    return stimulus


def test_a_study_scores_only_the_maps_it_asked_for(make_study):
    cat = make_study(photos=("chelsea.png",), labels=(285,), launch=True)  # Egyptian cat; Grad-CAM (the default)
    tabby = make_study(photos=("chelsea.png",), labels=(281,), launch=True)  # the same photo, labelled tabby
    same_label = make_study(photos=("chelsea.png",), labels=(285,), launch=True)
    ours, theirs, shared = _painted(cat), _painted(tabby), _painted(same_label)
    assert ours.sha256 == theirs.sha256 == shared.sha256
    gradcam_285 = model_map(ours, _blob(ours, 200, 150))
    gradcam_281 = model_map(theirs, _blob(theirs, 100, 100))
    fem_281 = model_map(theirs, _blob(theirs, 300, 200), method="fem")
    for stimulus in (ours, theirs, shared):
        services.scores_refresh(stimulus_id=stimulus.pk)

    jobs_of = {s.pk: set(Score.objects.filter(stimulus=s).values_list("job_id", flat=True)) for s in (ours, theirs, shared)}
    assert jobs_of == {ours.pk: {gradcam_285.pk}, theirs.pk: {gradcam_281.pk, fem_281.pk}, shared.pk: {gradcam_285.pk}}
    rows = analysis_selectors.study_report(cat).rows
    assert [(r.method_key, r.n_stimuli) for r in rows] == [("gradcam", 1)]
    assert [m.job.pk for m in study_gallery(study=cat)[0].models] == [gradcam_285.pk]
    assert {m.job.pk for m in study_gallery(study=tabby)[0].models} == {gradcam_281.pk, fem_281.pk}
    totals = {s.slug: researcher_selectors.study_progress(study=s)["jobs"]["total"] for s in (cat, tabby, same_label)}
    assert totals == {cat.slug: 1, tabby.slug: 2, same_label.slug: 1}


def test_scores_of_a_job_that_is_no_longer_the_stimulus_own_are_removed(make_study):
    study = make_study(photos=("chelsea.png",), labels=(285,), launch=True)
    stimulus = _painted(study)
    job = model_map(stimulus, _blob(stimulus, 200, 150))
    services.scores_refresh(stimulus_id=stimulus.pk)
    assert Score.objects.filter(stimulus=stimulus, job=job).exists()
    stimulus.class_index = 281  # relabelled: the Egyptian-cat map is not this stimulus' any more
    stimulus.save(update_fields=["class_index"])
    services.scores_refresh(stimulus_id=stimulus.pk)
    assert not Score.objects.filter(stimulus=stimulus).exists()
