import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotations import selectors
from annotations.models import Participant, Response, Trial
from annotations.services import participation
from studyserver.errors import Conflict, Gone, InvalidInput, NotFound
from studyserver.researcher.services import studies
from tests.conftest import paint_payload, png_bytes, rect_stroke

pytestmark = pytest.mark.django_db


def tiny_study(researcher, *, n_main=3, catch_boxes=(), practice=False, launch=True, **fields):
    """A study of small synthetic images (64 x 48), fast to create; catch stimuli with a box region."""
    fields.setdefault("participants_per_stimulus", 2)
    fields.setdefault("stimuli_per_participant", 2)
    study = studies.study_create(owner=researcher, slug=f"t-{uuid.uuid4().hex[:10]}", title="Tiny", **fields)
    rng = np.random.default_rng(len(study.slug))
    for i in range(n_main):
        studies.stimulus_create(study=study, data=png_bytes(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)),
                                filename=f"main-{i}.png", class_index=285)
    for i, box in enumerate(catch_boxes):
        studies.stimulus_create(study=study, data=png_bytes(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)),
                                filename=f"catch-{i}.png", class_index=285, role="catch", known_region={"boxes": [box]})
    if practice:
        studies.stimulus_create(study=study, data=png_bytes(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)),
                                filename="practice.png", class_index=285, role="practice")
    return studies.study_launch(study=study) if launch else study


def paint(box):
    return paint_payload([rect_stroke(*box, radius=2.0)])


def bubble(clicks, **extra):
    return {"display": {"width": 500, "height": 375}, "pointer_types": ["mouse"], "clicks": clicks,
            "bubble_radius": 4, "blur_sigma": 4, "viewing_ms": 10000, **extra}


def mouse(samples):
    return {"display": {"width": 500, "height": 375}, "pointer_types": ["mouse"], "samples": samples,
            "window_radius": 4, "blur_sigma": 4, "viewing_ms": 5000}


def submit(participant, trial, payload):
    return participation.response_submit(participant=participant, trial_id=trial.pk, client_uuid=uuid.uuid4(), payload=payload)


def answer_all(participant, payload_for):
    """Take trials until done; payload_for(trial) -> payload. Returns the trials in order."""
    taken = []
    while (trial := participation.trial_next_assign(participant=participant)) is not None:
        submit(participant, trial, payload_for(trial))
        taken.append(trial)
        participant.refresh_from_db()
    return taken


# --- consent ---------------------------------------------------------------------------------


def test_an_external_id_resumes_its_participant_only_with_proof(make_study):
    study = make_study(launch=True)
    first, created = participation.participant_start(study=study, external_id="PID123", external_session_id="S-1")
    anonymous, _ = participation.participant_start(study=study, external_id="PID-NO-SESSION")
    # the id alone, a wrong token, a wrong session id: someone else answering as PID123
    for proof in [{}, {"resume_token": anonymous.token}, {"external_session_id": "S-2"}, {"resume_token": first.token[:-1]}]:
        with pytest.raises(Conflict) as refused:
            participation.participant_start(study=study, external_id="PID123", **proof)
        assert refused.value.code == "already_in_progress" and first.token not in refused.value.message
    # their token (the resume cookie) or the session id stored at consent (Prolific's relaunch)
    for proof in [{"resume_token": first.token}, {"external_session_id": "S-1"}]:
        again, created_again = participation.participant_start(study=study, external_id="PID123", **proof)
        assert created and not created_again and again.pk == first.pk
    # no session id stored: an empty or any session id proves nothing
    for session in ["", "S-1"]:
        with pytest.raises(Conflict):
            participation.participant_start(study=study, external_id="PID-NO-SESSION", external_session_id=session)
    assert Participant.objects.filter(study=study).count() == 2


def test_new_participants_need_a_live_study_and_resumes_do_not(make_study):
    study = make_study(launch=True)
    kept, _ = participation.participant_start(study=study, external_id="kept")
    study = studies.study_pause(study=study)
    with pytest.raises(Conflict) as paused:
        participation.participant_start(study=study, external_id="new")
    assert paused.value.code == "study_paused"
    assert participation.participant_start(study=study, external_id="kept", resume_token=kept.token) == (kept, False)
    study = studies.study_close(study=study)
    with pytest.raises(Gone) as closed:
        participation.participant_start(study=study)
    assert closed.value.code == "study_closed"
    assert participation.participant_start(study=study, external_id="kept", resume_token=kept.token) == (kept, False)
    with pytest.raises(Conflict):  # and without proof, the same refusal as a live study's
        participation.participant_start(study=study, external_id="kept")
    assert Participant.objects.filter(study=study).count() == 1


def test_draft_study_takes_no_participants(make_study):
    with pytest.raises(Gone):
        participation.participant_start(study=make_study())


def test_participants_are_balanced_across_the_study_task_kinds(researcher):
    study = tiny_study(researcher, task_kinds=["paint", "bubble"])
    kinds = [participation.participant_start(study=study)[0].task_kind for _ in range(4)]
    assert kinds == ["paint", "bubble", "paint", "bubble"]
    bubbler = study.participants.filter(task_kind="bubble").first()
    assert participation.trial_next_assign(participant=bubbler).task_kind == "bubble"


def test_a_full_study_takes_no_one_and_a_full_kind_is_skipped(researcher):
    study = tiny_study(researcher, n_main=1, participants_per_stimulus=1, stimuli_per_participant=1, task_kinds=["paint", "mouse"])
    painter, _ = participation.participant_start(study=study, external_id="P1")
    submit(painter, participation.trial_next_assign(participant=painter), paint((0, 0, 30, 30)))
    assert participation.participant_start(study=study)[0].task_kind == "mouse"  # paint is full, mouse is not
    looker = study.participants.get(task_kind="mouse")
    participation.trial_next_assign(participant=looker)  # holds the last slot
    with pytest.raises(Gone) as info:
        participation.participant_start(study=study)
    assert info.value.code == "study_full"
    # the same person coming back (with proof) is not refused: they get their participant back
    assert participation.participant_start(study=study, external_id="P1", resume_token=painter.token) == (painter, False)
    with pytest.raises(Conflict):  # someone else with their id is refused, full study or not
        participation.participant_start(study=study, external_id="P1")


# --- submitting ------------------------------------------------------------------------------


def test_submit_is_idempotent_on_client_uuid(researcher):
    study = tiny_study(researcher)
    participant, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=participant)
    key = uuid.uuid4()
    first, created = participation.response_submit(participant=participant, trial_id=trial.pk, client_uuid=key, payload=paint((5, 5, 40, 40)))
    again, created_again = participation.response_submit(participant=participant, trial_id=trial.pk, client_uuid=key, payload=paint((5, 5, 40, 40)))
    assert created and not created_again and first.pk == again.pk
    with pytest.raises(Conflict, match="already answered"):
        submit(participant, trial, paint((5, 5, 40, 40)))
    assert Response.objects.count() == 1


def test_malformed_or_empty_payload_stores_nothing(make_study):
    study = make_study(launch=True)
    participant, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=participant)
    with pytest.raises(InvalidInput, match="strokes"):
        submit(participant, trial, {"strokes": 5, "display": {}})
    with pytest.raises(InvalidInput, match="nothing is painted"):
        submit(participant, trial, paint_payload([{"radius": 9, "erase": True, "points": [[5, 5, 0]]}]))
    with pytest.raises(InvalidInput, match="at most 90%"):
        submit(participant, trial, paint_payload([rect_stroke(0, 0, trial.stimulus.width, trial.stimulus.height, radius=20)]))
    assert Response.objects.count() == 0
    trial.refresh_from_db()
    assert trial.status == Trial.Status.ASSIGNED


def test_bubble_and_mouse_rules_come_from_the_study(researcher):
    study = tiny_study(researcher, task_kinds=["bubble"], task_params={"bubble": {"min_clicks": 3}})
    participant, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=participant)
    with pytest.raises(InvalidInput, match="click at least 3 times") as info:
        submit(participant, trial, bubble([[1, 1, 10], [2, 2, 20]]))
    assert "clicks" in info.value.fields
    submit(participant, trial, bubble([[1, 1, 10], [2, 2, 20], [3, 3, 30]]))
    study = tiny_study(researcher, task_kinds=["mouse"], task_params={"mouse": {"viewing_s": 2, "min_samples": 2}})
    participant, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=participant)
    with pytest.raises(InvalidInput, match="after the viewing time"):
        submit(participant, trial, mouse([[1, 1, 0], [1, 1, 4000]]))
    response, _ = submit(participant, trial, mouse([[1, 1, 0], [1.5, 1, 10]]))
    assert response.payload["samples"] == [[1.0, 1.0, 0.0], [1.5, 1.0, 10.0]]


def test_a_trial_of_someone_else_is_not_found(researcher):
    study = tiny_study(researcher)
    alice, _ = participation.participant_start(study=study)
    bob, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=alice)
    with pytest.raises(NotFound):
        submit(bob, trial, paint((0, 0, 30, 30)))
    assert Response.objects.count() == 0


def test_reload_returns_the_open_trial_and_counts_it(researcher):
    study = tiny_study(researcher)
    participant, _ = participation.participant_start(study=study)
    first = participation.trial_next_assign(participant=participant)
    again = participation.trial_next_assign(participant=participant)
    assert first.pk == again.pk and again.served_count == 2


def test_participant_completes_after_k_trials_and_then_nothing_is_stored(researcher):
    study = tiny_study(researcher)
    participant, _ = participation.participant_start(study=study)
    trials = answer_all(participant, lambda t: paint((5, 5, 40, 40)))
    participant.refresh_from_db()
    assert len(trials) == 2 and participant.status == Participant.Status.COMPLETED
    assert participation.trial_next_assign(participant=participant) is None
    with pytest.raises(Gone, match="already finished"):
        submit(participant, trials[0], paint((0, 0, 30, 30)))
    assert Response.objects.count() == 2


# --- assignment --------------------------------------------------------------------------------


def test_each_stimulus_gets_n_participants_and_never_more(researcher):
    study = tiny_study(researcher, n_main=2, participants_per_stimulus=2, stimuli_per_participant=1)
    served = []
    for _ in range(4):
        participant, _ = participation.participant_start(study=study)
        served.append(participation.trial_next_assign(participant=participant).stimulus_id)
    assert sorted(served) == sorted(list(study.stimuli.values_list("id", flat=True)) * 2)
    with pytest.raises(Gone):
        participation.participant_start(study=study)


def test_each_participant_sees_at_most_k_stimuli_once_in_random_order(researcher):
    study = tiny_study(researcher, n_main=6, participants_per_stimulus=30, stimuli_per_participant=4)
    orders = set()
    for _ in range(12):
        participant, _ = participation.participant_start(study=study)
        trials = answer_all(participant, lambda t: paint((5, 5, 40, 40)))
        ids = [t.stimulus_id for t in trials]
        assert len(ids) == 4 and len(set(ids)) == 4
        orders.add(tuple(ids))
    assert len(orders) > 6  # random orders, not one fixed sequence


def test_variants_of_one_source_never_go_to_the_same_participant(make_study):
    from studyserver.researcher.demo import demo_photo_bytes

    study = make_study(photos=("chelsea.png",), labels=(285,), stimuli_per_participant=2, participants_per_stimulus=5)
    original = study.stimuli.get()
    studies.stimulus_create(study=study, data=demo_photo_bytes("camera.png"), filename="variant.png", class_index=285,
                            condition="glass_blur-2", source=original)
    study = studies.study_launch(study=study)
    participant, _ = participation.participant_start(study=study)
    answer_all(participant, lambda t: paint((5, 5, 60, 60)))
    assert participant.trials.count() == 1


def test_an_abandoned_lease_expires_and_the_stimulus_goes_back_to_the_pool(researcher):
    study = tiny_study(researcher, n_main=1, participants_per_stimulus=1, stimuli_per_participant=1)
    leaver, _ = participation.participant_start(study=study)
    abandoned = participation.trial_next_assign(participant=leaver)
    Trial.objects.filter(pk=abandoned.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    newcomer, _ = participation.participant_start(study=study)  # the expired lease is a free slot
    trial = participation.trial_next_assign(participant=newcomer)
    assert trial.stimulus_id == abandoned.stimulus_id
    abandoned.refresh_from_db()
    assert abandoned.status == Trial.Status.EXPIRED
    with pytest.raises(Gone, match="expired"):
        submit(leaver, abandoned, paint((0, 0, 30, 30)))
    submit(newcomer, trial, paint((0, 0, 30, 30)))
    assert Response.objects.count() == 1


def test_an_answer_arriving_after_the_lease_but_before_anyone_took_the_slot_is_kept(researcher):
    study = tiny_study(researcher, n_main=1, participants_per_stimulus=1, stimuli_per_participant=1)
    slow, _ = participation.participant_start(study=study)
    trial = participation.trial_next_assign(participant=slow)
    Trial.objects.filter(pk=trial.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    submit(slow, trial, paint((0, 0, 30, 30)))
    trial.refresh_from_db()
    assert trial.status == Trial.Status.DONE
    with pytest.raises(Gone):  # the stimulus has its N
        participation.participant_start(study=study)


def test_catch_trials_are_interleaved_at_random(researcher):
    study = tiny_study(researcher, n_main=2, catch_boxes=([0, 0, 32, 48], [32, 0, 64, 48]),
                       participants_per_stimulus=40, stimuli_per_participant=2)
    catch_positions = []
    for _ in range(16):
        participant, _ = participation.participant_start(study=study)
        trials = answer_all(participant, lambda t: paint((0, 0, 40, 40) if t.stimulus.role == "main" else tuple(t.stimulus.known_region["boxes"][0])))
        roles = [t.stimulus.role for t in trials]
        assert sorted(roles) == ["catch", "catch", "main", "main"]
        catch_positions += [i for i, role in enumerate(roles) if role == "catch"]
        participant.refresh_from_db()
        assert participant.status == Participant.Status.COMPLETED
        assert selectors.participant_progress(participant=participant) == {"done": 4, "total": 4}
    assert set(catch_positions) == {0, 1, 2, 3}


# --- attention checks ------------------------------------------------------------------------


def _capture_tasks(callbacks):
    return sorted((cb.args[0].name.rsplit(".", 1)[-1], cb.args[1]) for cb in callbacks if hasattr(cb, "args"))


def test_a_failed_paint_catch_trial_excludes_the_participant_and_rebuilds_their_maps(researcher, django_capture_on_commit_callbacks):
    study = tiny_study(researcher, n_main=2, catch_boxes=([0, 0, 32, 48],), participants_per_stimulus=2, stimuli_per_participant=2)
    participant, _ = participation.participant_start(study=study)
    answered_main = []
    while True:
        trial = participation.trial_next_assign(participant=participant)
        if trial.stimulus.role == "catch":
            break
        submit(participant, trial, paint((0, 0, 30, 30)))
        answered_main.append(trial.stimulus_id)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response, _ = submit(participant, trial, paint((34, 0, 64, 48)))  # the wrong half: IoU 0
    participant.refresh_from_db()
    trial.refresh_from_db()
    assert participant.status == Participant.Status.EXCLUDED and "0 of 1" in participant.exclusion_reason
    assert (trial.catch_passed, trial.catch_score) == (False, 0.0)
    assert Response.objects.filter(pk=response.pk).exists()  # raw data kept
    assert _capture_tasks(callbacks) == sorted(("human_map_rebuild", (sid, "paint")) for sid in answered_main)
    assert participation.trial_next_assign(participant=participant) is None
    participation.participant_finish(participant=participant)
    participant.refresh_from_db()
    assert participant.status == Participant.Status.EXCLUDED


def test_a_passed_paint_catch_trial_keeps_the_participant(researcher):
    study = tiny_study(researcher, n_main=1, catch_boxes=([0, 0, 32, 48],), participants_per_stimulus=2, stimuli_per_participant=1)
    participant, _ = participation.participant_start(study=study)
    answer_all(participant, lambda t: paint((0, 0, 32, 48)))  # main and catch: the left half
    participant.refresh_from_db()
    catch = participant.trials.get(stimulus__role="catch")
    assert participant.status == Participant.Status.COMPLETED and catch.catch_passed and catch.catch_score >= 0.55


@pytest.mark.parametrize("kind,inside,outside", [
    ("bubble", bubble([[5, 5, 10], [10, 40, 20], [60, 5, 30]]), bubble([[50, 5, 10], [60, 40, 20], [5, 5, 30]])),
    ("mouse", mouse([[5, 5, 0]] * 15 + [[50, 5, 10]] * 10), mouse([[5, 5, 0]] * 10 + [[50, 5, 10]] * 15)),
])
def test_points_catch_trials_pass_when_most_points_fall_in_the_region(researcher, kind, inside, outside):
    study = tiny_study(researcher, n_main=1, catch_boxes=([0, 0, 32, 48],), participants_per_stimulus=5,
                       stimuli_per_participant=1, task_kinds=[kind], task_params={"mouse": {"min_samples": 1}})
    good, _ = participation.participant_start(study=study)
    answer_all(good, lambda t: inside)
    bad, _ = participation.participant_start(study=study)
    answer_all(bad, lambda t: outside)
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == Participant.Status.COMPLETED and bad.status == Participant.Status.EXCLUDED
    assert good.trials.get(stimulus__role="catch").catch_score == pytest.approx(2 / 3 if kind == "bubble" else 0.6)


def test_the_pass_threshold_counts_catch_trials_and_excluded_slots_go_back(researcher):
    study = tiny_study(researcher, n_main=1, catch_boxes=([0, 0, 32, 48], [32, 0, 64, 48]),
                       participants_per_stimulus=1, stimuli_per_participant=1, task_params={"catch": {"pass_fraction": 0.5}})
    half, _ = participation.participant_start(study=study)
    # the left half everywhere: passes the left catch trial, fails the right one
    answer_all(half, lambda t: paint((0, 0, 32, 48)))
    assert sorted(half.trials.filter(stimulus__role="catch").values_list("catch_passed", flat=True)) == [False, True]
    half.refresh_from_db()
    assert half.status == Participant.Status.COMPLETED  # 1 of 2 passed = 0.5
    # the only main stimulus is taken: a newcomer is refused...
    with pytest.raises(Gone):
        participation.participant_start(study=study)
    # ...until the researcher excludes the first participant, whose slot then goes back
    participation.participant_exclude(participant=half, reason="by the researcher")
    newcomer, _ = participation.participant_start(study=study)
    trials = answer_all(newcomer, lambda t: paint((0, 0, 32, 48)))
    assert [t.stimulus.role for t in trials].count("main") == 1


def test_excluded_participants_get_the_failed_completion_code(researcher):
    study = tiny_study(researcher, n_main=1, catch_boxes=([0, 0, 32, 48],), stimuli_per_participant=1,
                       task_params={"catch": {"failed_code": "FAILED-1"}})
    participant, _ = participation.participant_start(study=study)
    answer_all(participant, lambda t: paint((40, 0, 64, 48)))
    participant.refresh_from_db()
    assert participant.status == Participant.Status.EXCLUDED
    assert selectors.completion_code_get(participant=participant) == "FAILED-1"
    other, _ = participation.participant_start(study=study)
    assert selectors.completion_code_get(participant=other) == study.completion_code


# --- practice and calibration ------------------------------------------------------------------


def test_practice_is_checked_with_the_real_rules_and_not_stored(researcher):
    study = tiny_study(researcher)
    participant, _ = participation.participant_start(study=study)
    practice = selectors.practice_get(participant=participant)
    assert practice.stimulus is None and (practice.width, practice.height, practice.label) == (480, 360, "ball")
    with pytest.raises(InvalidInput, match="nothing is painted"):
        participation.practice_submit(participant=participant, payload=paint_payload([{"radius": 3, "erase": True, "points": [[1, 1, 0]]}]))
    participant = participation.practice_submit(participant=participant, payload=paint_payload([rect_stroke(230, 145, 370, 285)]))
    assert participant.practice_done_at is not None and Response.objects.count() == 0 and not participant.trials.exists()
    own = tiny_study(researcher, practice=True)
    participant, _ = participation.participant_start(study=own)
    practice = selectors.practice_get(participant=participant)
    assert practice.stimulus.role == "practice" and (practice.width, practice.height) == (40, 30)
    with pytest.raises(InvalidInput, match="x"):  # outside the 40 x 30 practice image
        participation.practice_submit(participant=participant, payload=paint_payload([rect_stroke(0, 0, 60, 20)]))


def test_degree_studies_need_the_calibration_which_fixes_the_sizes(researcher):
    study = tiny_study(researcher, task_kinds=["bubble"],
                       task_params={"units": "deg", "display_size": 10, "bubble": {"bubble_radius": 1, "blur_sigma": 1}})
    participant, _ = participation.participant_start(study=study)
    with pytest.raises(Conflict) as info:
        participation.trial_next_assign(participant=participant)
    assert info.value.code == "calibration_required"
    with pytest.raises(InvalidInput):
        participation.participant_calibrate(participant=participant, card_width_px=20)
    participant = participation.participant_calibrate(participant=participant, card_width_px=428, dpr=2, screen=[1440, 900])
    assert participant.calibration["px_per_cm"] == pytest.approx(50.0)
    assert participant.calibration["px_per_degree"] == pytest.approx(50.0 * 2 * 57 * np.tan(np.radians(0.5)))
    trial = participation.trial_next_assign(participant=participant)
    geometry = selectors.trial_geometry_get(participant=participant, width=64, height=48)
    display_css = 50.0 * 2 * 57 * np.tan(np.radians(5))  # 10 degrees
    assert geometry["display"]["width"] == pytest.approx(display_css, abs=0.01)
    assert geometry["params"]["bubble_radius"] == pytest.approx(50.0 * 2 * 57 * np.tan(np.radians(0.5)) * 64 / display_css, abs=1e-3)
    assert trial is not None
    with pytest.raises(Conflict, match="before the first trial"):
        participation.participant_calibrate(participant=participant, card_width_px=300)


def test_a_paused_study_keeps_its_participants_waiting_not_finished(researcher):
    study = tiny_study(researcher, n_main=3, stimuli_per_participant=3)
    participant, _ = participation.participant_start(study=study)
    first = participation.trial_next_assign(participant=participant)
    submit(participant, first, paint([5, 5, 40, 30]))
    held = participation.trial_next_assign(participant=participant)
    study = studies.study_pause(study=study)
    # the trial already handed out is resumed and can be answered
    assert participation.trial_next_assign(participant=participant).pk == held.pk
    submit(participant, held, paint([5, 5, 40, 30]))
    with pytest.raises(Conflict) as paused:
        participation.trial_next_assign(participant=participant)
    assert paused.value.code == "study_paused"
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    studies.study_resume(study=study)
    assert participation.trial_next_assign(participant=participant) is not None
