"""A researcher's preview of a study as a participant: the same pages, images, sizes and answer
checks as a real participant, and NOTHING written to the database -- no Participant, Trial or
Response rows. The preview's state (its plan, how far it got, the screen calibration) lives with the
caller (the dashboard keeps it in the researcher's session).

The plan mirrors `assignment.trial_next_assign` without its slots: K main stimuli, never two
conditions of one source image, and the planned catch trials, in random order.
"""
from __future__ import annotations

import random

from studyserver.errors import InvalidInput

from ..models import Participant, Stimulus, StimulusRole, Study
from ..selectors import catch_planned
from ..task_params import CARD_WIDTH_CM
from .participation import response_payload_check

_random = random.SystemRandom()


def preview_plan(*, study: Study, rng: random.Random | None = None) -> list[int]:
    """Stimulus ids a participant of this study could get, in the order the preview shows them."""
    rng = rng or _random
    by_source: dict[int, list[int]] = {}
    for stimulus_id, source_id in study.stimuli.filter(role=StimulusRole.MAIN).values_list("id", "source_id"):
        by_source.setdefault(source_id or stimulus_id, []).append(stimulus_id)
    groups = list(by_source.values())
    rng.shuffle(groups)
    main = [rng.choice(group) for group in groups[: study.stimuli_per_participant]]
    catch = list(study.stimuli.filter(role=StimulusRole.CATCH).values_list("id", flat=True))
    plan = main + rng.sample(catch, catch_planned(study, len(catch)))
    rng.shuffle(plan)
    return plan


def preview_participant(*, study: Study, task_kind: str, calibration: dict | None = None) -> Participant:
    """An unsaved participant doing `task_kind`: what the geometry and answer checks read."""
    if task_kind not in study.task_kinds:
        raise InvalidInput(f"study {study.slug} has no task kind {task_kind!r}; it has {', '.join(study.task_kinds)}",
                           fields={"kind": ["unknown"]})
    return Participant(study=study, task_kind=task_kind, calibration=calibration)


def preview_calibration(*, card_width_px: float) -> dict:
    """The screen calibration a participant would store (px per cm from the card's width in CSS px)."""
    if not 100 <= card_width_px <= 4000:
        raise InvalidInput(f"card_width_px = {card_width_px} is not a plausible card width (100..4000 CSS px)",
                           fields={"card_width_px": ["out of range"]})
    return {"card_width_px": round(card_width_px, 3), "card_width_cm": CARD_WIDTH_CM, "px_per_cm": card_width_px / CARD_WIDTH_CM}


def preview_answer_check(*, participant: Participant, width: int, height: int, payload) -> dict:
    """The answer checked with the real trial's rules (InvalidInput or PayloadTooLarge naming the
    problem); the cleaned payload is returned and thrown away by the caller."""
    cleaned, _ = response_payload_check(participant, participant.task_kind, payload, width, height)
    return cleaned


def preview_stimulus(*, study: Study, stimulus_id: int) -> Stimulus:
    return study.stimuli.get(pk=stimulus_id)
