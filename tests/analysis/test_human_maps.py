"""Human maps on PostgreSQL: incremental folding, bit-identical rebuilds, exclusions and recipes."""
import numpy as np
import pytest

from analysis import services
from analysis.models import HumanMap, MapRecipe
from analysis.recipes import participant_map, recipe_default
from annotations.models import Participant, Trial
from studyserver.errors import InvalidInput
from studyserver.storage import array_load
from tests.analysis.conftest import answer, bubble_payload, mouse_payload, new_participant
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


def _clicks(seed, n=6, width=400, height=300):
    g = np.random.default_rng(seed)
    return [(g.uniform(0, width), g.uniform(0, height), 100 * i) for i in range(n)]


def test_bubble_map_is_the_mean_of_participant_densities(bubble_study):
    stimulus = bubble_study.stimuli.first()
    payloads = [bubble_payload(_clicks(i), display_width=w) for i, w in enumerate([500, 500, 250])]
    for payload in payloads:
        answer(new_participant(bubble_study), stimulus, payload)
        services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    human_map = HumanMap.objects.get(stimulus=stimulus, task_kind="bubble")
    expected = [participant_map(p, recipe_default("bubble"), height=stimulus.height, width=stimulus.width) for p in payloads]
    mean = services.human_map_mean(human_map)
    assert human_map.n_participants == 3
    assert np.allclose(mean, np.mean([e.density for e in expected], axis=0), rtol=0, atol=1e-15)
    assert mean.sum() == pytest.approx(1.0)
    scale = stimulus.width / 500
    assert human_map.sigma_px_min == pytest.approx(25 * scale) and human_map.sigma_px_max == pytest.approx(50 * scale)
    fixations = services.human_map_fixations(human_map)
    assert np.array_equal(fixations, np.sum([e.fixations for e in expected], axis=0) > 0)
    assert human_map.recipe == recipe_default("bubble")


def test_incremental_equals_rebuild_bit_for_bit_even_out_of_id_order(bubble_study):
    """Folding order is recorded, so a rebuild from the raw responses gives the same bits, also when
    a response with a lower id was committed (and folded) after a higher one."""
    stimulus = bubble_study.stimuli.first()
    late = answer(new_participant(bubble_study), stimulus, bubble_payload(_clicks(10, 9)), done=False)
    for seed in range(11, 16):
        answer(new_participant(bubble_study), stimulus, bubble_payload(_clicks(seed, 7)))
        services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    Trial.objects.filter(pk=late.trial_id).update(status=Trial.Status.DONE)
    incremental = services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    assert incremental.n_participants == 6
    folded = list(incremental.contributions.order_by("sequence").values_list("response_id", flat=True))
    assert folded[-1] == late.pk and folded != sorted(folded)
    before_sum, before_fix = array_load(incremental.sum_file), array_load(incremental.fixations_file)
    rebuilt = services.human_map_rebuild(stimulus_id=stimulus.pk, task_kind="bubble")
    assert np.array_equal(array_load(rebuilt.sum_file), before_sum)
    assert array_load(rebuilt.sum_file).tobytes() == before_sum.tobytes()
    assert np.array_equal(array_load(rebuilt.fixations_file), before_fix)
    assert rebuilt.revision == incremental.revision + 1


def test_a_response_is_folded_once_however_often_updates_run(bubble_study):
    stimulus = bubble_study.stimuli.first()
    answer(new_participant(bubble_study), stimulus, bubble_payload(_clicks(1)))
    first = services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    again = services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    assert again.n_participants == 1 and again.revision == first.revision
    assert again.contributions.count() == 1


def test_unanswered_and_catch_trials_are_left_out(make_study):
    study = make_study(task_kinds=["bubble"], launch=False)
    from studyserver.researcher.demo import demo_photo_bytes
    from studyserver.researcher.services import studies

    catch = studies.stimulus_create(study=study, data=demo_photo_bytes("camera.png"), filename="catch.png", role="catch", known_region=[10, 10, 200, 200])
    study = studies.study_launch(study=study)
    main = study.stimuli.filter(role="main").first()
    answer(new_participant(study), main, bubble_payload(_clicks(2)), done=False)
    answer(new_participant(study), catch, bubble_payload(_clicks(3)))
    assert services.human_map_update(stimulus_id=main.pk, task_kind="bubble").n_participants == 0
    assert services.human_map_update(stimulus_id=catch.pk, task_kind="bubble").n_participants == 0


def test_exclusion_rebuilds_without_the_participant(bubble_study):
    stimulus = bubble_study.stimuli.first()
    people = [new_participant(bubble_study) for _ in range(3)]
    payloads = [bubble_payload(_clicks(20 + i)) for i in range(3)]
    for person, payload in zip(people, payloads):
        answer(person, stimulus, payload)
    services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    Participant.objects.filter(pk=people[1].pk).update(status=Participant.Status.EXCLUDED)
    assert services.maps_pending(study=bubble_study) == [(stimulus.pk, "bubble")]
    human_map = HumanMap.objects.get(stimulus=stimulus)
    assert services.stale_reason(human_map, human_map.recipe) == "a folded participant was excluded"
    # the next update notices and rebuilds
    updated = services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    kept = [participant_map(p, recipe_default("bubble"), height=stimulus.height, width=stimulus.width).density for p in (payloads[0], payloads[2])]
    assert updated.n_participants == 2
    assert np.array_equal(array_load(updated.sum_file), kept[0] + kept[1])
    assert services.maps_pending(study=bubble_study) == []


def test_recipe_change_rebuilds_with_the_new_sigma(bubble_study):
    stimulus = bubble_study.stimuli.first()
    payload = bubble_payload(_clicks(30))
    answer(new_participant(bubble_study), stimulus, payload)
    services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    services.human_map_recipe_set(study=bubble_study, task_kind="bubble", recipe={"kind": "gaussian_points", "sigma_px": 8})
    assert MapRecipe.objects.get(study=bubble_study).recipe["sigma_px"] == 8.0
    assert services.maps_pending(study=bubble_study) == [(stimulus.pk, "bubble")]
    rebuilt = services.human_map_rebuild(stimulus_id=stimulus.pk, task_kind="bubble")
    assert rebuilt.recipe == {"kind": "gaussian_points", "points": "clicks", "sigma_px": 8.0, "version": 1}
    assert rebuilt.sigma_px_min == rebuilt.sigma_px_max == 8.0
    expected = participant_map(payload, rebuilt.recipe, height=stimulus.height, width=stimulus.width).density
    assert np.array_equal(services.human_map_mean(rebuilt), expected)


def test_bad_recipe_is_refused_and_nothing_stored(bubble_study):
    with pytest.raises(InvalidInput, match="sigma"):
        services.human_map_recipe_set(study=bubble_study, task_kind="bubble", recipe={"kind": "gaussian_points", "sigma_px": 0})
    with pytest.raises(InvalidInput, match="task kind"):
        services.human_map_recipe_set(study=bubble_study, task_kind="paint", recipe={"kind": "paint_mask"})
    assert not MapRecipe.objects.exists()


def test_mouse_samples_make_a_density_and_fixations(make_study):
    study = make_study(task_kinds=["mouse"], launch=True)
    stimulus = study.stimuli.first()
    samples = [(100 + i, 80 + i / 2, 10 * i) for i in range(200)]
    answer(new_participant(study), stimulus, mouse_payload(samples))
    human_map = services.human_map_update(stimulus_id=stimulus.pk, task_kind="mouse")
    assert services.human_map_mean(human_map).sum() == pytest.approx(1.0)
    assert services.human_map_fixations(human_map).sum() == len({(int(x), int(y)) for x, y, _ in samples})
    assert human_map.sigma_px_min == pytest.approx(19 * stimulus.width / 500)


def test_paint_maps_have_no_fixations(make_study):
    study = make_study(launch=True)
    stimulus = study.stimuli.first()
    answer(new_participant(study), stimulus, paint_payload([rect_stroke(10, 10, 100, 100)]))
    human_map = services.human_map_update(stimulus_id=stimulus.pk, task_kind="paint")
    assert human_map.fixations_file.name in ("", None) and services.human_map_fixations(human_map) is None
    assert human_map.sigma_px_min is None


def test_an_excluded_participant_can_be_rebuilt_out_through_the_task(bubble_study):
    from analysis import tasks

    stimulus = bubble_study.stimuli.first()
    person = new_participant(bubble_study)
    answer(person, stimulus, bubble_payload(_clicks(40)))
    services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    Participant.objects.filter(pk=person.pk).update(status=Participant.Status.EXCLUDED)
    tasks.participant_maps_rebuild(person.pk)  # queues rebuilds on commit (none here: test transaction)
    assert services.human_map_rebuild(stimulus_id=stimulus.pk, task_kind="bubble").n_participants == 0
    human_map = HumanMap.objects.get(stimulus=stimulus)
    assert services.human_map_mean(human_map) is None and not human_map.sum_file


def test_folding_a_response_rasterises_only_that_response(bubble_study, monkeypatch):
    """The incremental path touches the new response only (O(pixels)), whatever n already is."""
    import analysis.selectors as maps_reads  # where a response becomes its participant map

    stimulus = bubble_study.stimuli.first()
    for seed in range(6):
        answer(new_participant(bubble_study), stimulus, bubble_payload(_clicks(50 + seed)))
    services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    calls = []
    real = maps_reads.participant_map
    monkeypatch.setattr(maps_reads, "participant_map", lambda *a, **k: calls.append(1) or real(*a, **k))
    answer(new_participant(bubble_study), stimulus, bubble_payload(_clicks(99)))
    human_map = services.human_map_update(stimulus_id=stimulus.pk, task_kind="bubble")
    assert human_map.n_participants == 7 and len(calls) == 1
    assert [c.sequence for c in human_map.contributions.order_by("sequence")] == list(range(7))
