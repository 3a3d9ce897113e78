"""Scores and reliability rows on PostgreSQL, from stored human and model maps."""

import numpy as np
import pytest

from analysis import metrics, services
from analysis.models import HumanCeiling, ReliabilityRun, Score
from analysis.scoring import ALL_METRICS, MAP_METRICS
from tests.analysis.conftest import answer, bubble_payload, model_map, new_participant
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


def _clicks_near(x, y, seed, n=5, spread=15):
    g = np.random.default_rng(seed)
    return [(x + g.normal(0, spread), y + g.normal(0, spread), 100 * i) for i in range(n)]


def _fill(study, kind_payloads):
    """kind_payloads: stimulus -> list of payloads; one new participant per payload."""
    for stimulus, payloads in kind_payloads.items():
        for payload in payloads:
            answer(new_participant(study), stimulus, payload)
        services.human_map_update(stimulus_id=stimulus.pk, task_kind=study.task_kinds[0])


def _blob(stimulus, x, y, sigma=30):
    ys, xs = np.mgrid[0 : stimulus.height, 0 : stimulus.width] + 0.5
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))


def test_bubble_scores_hold_every_metric_and_equal_the_functions(bubble_study):
    stimulus = bubble_study.stimuli.first()
    _fill(bubble_study, {stimulus: [bubble_payload(_clicks_near(150, 120, s)) for s in range(4)]})
    good = model_map(stimulus, _blob(stimulus, 150, 120), method="gradcam")
    bad = model_map(stimulus, _blob(stimulus, 20, 20), method="gradient")
    result = services.scores_refresh(stimulus_id=stimulus.pk)
    assert result.written == 2 * len(ALL_METRICS) and not result.refused
    scores = {(s.job_id, s.metric): s.value for s in Score.objects.filter(stimulus=stimulus)}
    assert scores[(good.pk, "pcc")] > scores[(bad.pk, "pcc")]
    assert scores[(good.pk, "auc_judd")] > 0.9 > scores[(bad.pk, "auc_judd")]
    assert scores[(good.pk, "kld")] < scores[(bad.pk, "kld")]
    human_map = stimulus.human_maps.get()
    human, fixations = services.human_map_mean(human_map), services.human_map_fixations(human_map)
    p = _blob(stimulus, 150, 120).astype(np.float32)
    assert scores[(good.pk, "nss")] == pytest.approx(metrics.nss(p, fixations), abs=1e-12)
    assert scores[(good.pk, "spearman")] == pytest.approx(metrics.spearman(p, human), abs=1e-12)
    assert all(s.n_participants == 4 for s in Score.objects.filter(stimulus=stimulus))


def test_paint_scores_have_no_fixation_metrics(make_study):
    study = make_study(launch=True)
    stimulus = study.stimuli.first()
    answer(new_participant(study), stimulus, paint_payload([rect_stroke(10, 10, 100, 100)]))
    services.human_map_update(stimulus_id=stimulus.pk, task_kind="paint")
    model_map(stimulus, _blob(stimulus, 50, 50))
    services.scores_refresh(stimulus_id=stimulus.pk)
    assert set(Score.objects.filter(stimulus=stimulus).values_list("metric", flat=True)) == set(MAP_METRICS)


def test_nan_in_a_stored_model_map_is_refused_with_the_reason(bubble_study):
    stimulus = bubble_study.stimuli.first()
    _fill(bubble_study, {stimulus: [bubble_payload(_clicks_near(150, 120, 1))]})
    broken = _blob(stimulus, 100, 100)
    broken[5, 5] = np.nan
    job = model_map(stimulus, broken)
    fine = model_map(stimulus, _blob(stimulus, 100, 100), method="rise")
    result = services.scores_refresh(stimulus_id=stimulus.pk)
    assert "NaN" in result.refused[job.pk]
    rows = Score.objects.filter(stimulus=stimulus, job=job)
    assert rows.count() == len(ALL_METRICS) and all(r.value is None and "NaN" in r.note for r in rows)
    assert all(r.value is not None for r in Score.objects.filter(stimulus=stimulus, job=fine, metric="pcc"))


def test_model_map_of_another_size_is_resized(bubble_study):
    stimulus = bubble_study.stimuli.first()
    _fill(bubble_study, {stimulus: [bubble_payload(_clicks_near(150, 120, s)) for s in range(3)]})
    small = _blob(stimulus, 150, 120)[::4, ::4]
    job = model_map(stimulus, small)
    services.scores_refresh(stimulus_id=stimulus.pk)
    assert Score.objects.get(job=job, metric="pcc").value > 0.5


def test_scores_go_when_the_map_empties(bubble_study):
    from annotations.models import Participant

    stimulus = bubble_study.stimuli.first()
    _fill(bubble_study, {stimulus: [bubble_payload(_clicks_near(150, 120, 1))]})
    model_map(stimulus, _blob(stimulus, 100, 100))
    services.scores_refresh(stimulus_id=stimulus.pk)
    assert Score.objects.filter(stimulus=stimulus).exists()
    Participant.objects.update(status=Participant.Status.EXCLUDED)
    services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    result = services.scores_refresh(stimulus_id=stimulus.pk)
    assert result.empty_kinds == ["bubble"] and not Score.objects.filter(stimulus=stimulus).exists()


def _reliability_study(make_study, n=6):
    """Three small real photos, n bubble participants each, reliability at 8 repetitions."""
    from studyserver.researcher.services import studies
    from tests.analysis.conftest import small_png

    study = make_study(task_kinds=["bubble"], participants_per_stimulus=20, photos=())
    for name, label in (("chelsea.png", 285), ("coffee.png", 967), ("astronaut.png", 834)):
        studies.stimulus_create(study=study, data=small_png(name, max_side=200), filename=name, class_index=label)
    study = studies.study_launch(study=study)
    services.reliability_params_set(study=study, task_kind="bubble", params={"repetitions": 8, "curve_repetitions": 4})
    spots = [(40, 40), (120, 80), (100, 30)]
    _fill(study, {s: [bubble_payload(_clicks_near(x, y, seed=10 * i + k)) for k in range(n)] for i, (s, (x, y)) in enumerate(zip(study.stimuli.all(), spots))})
    return study


def test_reliability_rows_for_every_stimulus_and_metric(make_study):
    study = _reliability_study(make_study)
    run = services.reliability_refresh(study_id=study.pk, task_kind="bubble")
    assert run is not None and run.computed == run.requested and run.status == "idle"
    rows = HumanCeiling.objects.filter(stimulus__study=study)
    assert rows.count() == 3 * len(ALL_METRICS)
    for stimulus in study.stimuli.all():
        pcc = rows.get(stimulus=stimulus, metric="pcc")
        assert pcc.n_participants == 6 and pcc.repetitions == 8
        assert pcc.ceiling > pcc.floor  # the same stimulus agrees more than two different ones
        assert [point[0] for point in pcc.curve] == [1, 2, 3]
        assert rows.get(stimulus=stimulus, metric="kld").curve == []
    # nothing changed: a second run has nothing to do
    assert services.reliability_refresh(study_id=study.pk, task_kind="bubble") is None


def test_reliability_is_reproducible_and_incremental(make_study):
    study = _reliability_study(make_study)
    services.reliability_refresh(study_id=study.pk, task_kind="bubble")
    first = {(r.stimulus_id, r.metric): (r.ceiling, r.floor, r.curve) for r in HumanCeiling.objects.all()}
    times = dict(HumanCeiling.objects.filter(metric="pcc").values_list("stimulus_id", "computed_at"))
    services.reliability_refresh(study_id=study.pk, task_kind="bubble", force=True)
    assert dict(HumanCeiling.objects.filter(metric="pcc").values_list("stimulus_id", "computed_at")) == times  # skipped
    HumanCeiling.objects.all().update(fingerprint="")
    services.reliability_refresh(study_id=study.pk, task_kind="bubble", force=True)
    again = {(r.stimulus_id, r.metric): (r.ceiling, r.floor, r.curve) for r in HumanCeiling.objects.all()}
    assert again == first


def test_stimulus_with_too_few_participants_is_reported_not_failed(make_study):
    study = make_study(task_kinds=["bubble"], launch=True, participants_per_stimulus=20)
    one, none = list(study.stimuli.all())
    _fill(study, {one: [bubble_payload(_clicks_near(100, 100, 1))]})
    services.reliability_refresh(study_id=study.pk, task_kind="bubble", force=True)
    row = HumanCeiling.objects.get(stimulus=one, metric="pcc")
    assert row.ceiling is None and row.floor is None and row.n_participants == 1
    assert not HumanCeiling.objects.filter(stimulus=none).exists()
    assert services.stimuli_without_responses(study=study, task_kind="bubble") == [none]


def test_requests_collapse_into_one_run(make_study):
    study = _reliability_study(make_study, n=2)
    run = ReliabilityRun.objects.get(study=study, task_kind="bubble")
    assert run.requested == 4  # the parameters, then one request per map update
    assert services.reliability_refresh(study_id=study.pk, task_kind="bubble").computed == 4
    services.reliability_request(study_id=study.pk, task_kind="bubble")
    ReliabilityRun.objects.filter(pk=run.pk).update(status="running", started_at="2099-01-01T00:00:00Z")
    assert services.reliability_refresh(study_id=study.pk, task_kind="bubble") is None  # someone else runs


def test_bad_reliability_parameters_are_refused(make_study, django_capture_on_commit_callbacks):
    from studyserver.errors import InvalidInput

    study = make_study(task_kinds=["bubble"], launch=True)
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(InvalidInput, match="repetitions"):
            services.reliability_params_set(study=study, task_kind="bubble", params={"repetitions": 0})
        with pytest.raises(InvalidInput, match="unknown"):
            services.reliability_params_set(study=study, task_kind="bubble", params={"reps": 3})
    assert callbacks == [] and not ReliabilityRun.objects.filter(study=study).exists()  # refused: nothing stored or queued
    with django_capture_on_commit_callbacks() as callbacks:
        run = services.reliability_params_set(study=study, task_kind="bubble", params={"repetitions": 5, "seed": 9})
    stored = ReliabilityRun.objects.get(pk=run.pk)
    assert stored.params["repetitions"] == 5 and stored.params["seed"] == 9 and stored.params["partners"] == 3
    # the new parameters ask for a run: the request counter moved past what was computed, and the task is queued
    assert stored.requested == stored.computed + 1
    assert [(c.args[0].name, tuple(c.args[1])) for c in callbacks] == [("analysis.tasks.reliability_refresh", (study.pk, "bubble"))]
