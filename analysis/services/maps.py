"""Writes for human maps: folding responses in, rebuilding from raw, recipes and exclusions.

Invariants:
- A map's running sum holds exactly the responses recorded as its contributions, folded in
  `sequence` order; each response is folded once (a unique constraint says so).
- Only included responses are folded: answered (trial DONE), main stimuli, participants not excluded.
- `human_map_rebuild` folds the same raw responses in the same order (previous fold order for those
  still included, then the others by id), so with nothing excluded it reproduces the incremental
  map bit for bit; a rebuild is how exclusions and recipe changes take effect.
- `human_map_update` notices a stale map (recipe changed, a folded participant now excluded) and
  rebuilds it instead of folding.
"""
from __future__ import annotations

import logging

import numpy as np
from django.db import transaction

from annotations.models import Participant, Response, Stimulus, StimulusRole, Study, Trial
from annotations.selectors import responses_included
from studyserver.errors import InvalidInput
from studyserver.queueing import enqueue_coalesced_on_commit, enqueue_on_commit
from studyserver.storage import array_load, array_save

from ..aggregate import running_sum_add
from ..models import HumanMap, HumanMapContribution, MapRecipe
from ..recipes import RecipeInvalid, recipe_clean
from ..selectors import human_map_fixations, human_map_mean, recipe_for, response_map  # noqa: F401 (re-exported)
from .reliability import reliability_request

log = logging.getLogger(__name__)
# The app's tasks, queued by name (tasks.py imports these services).
SCORES_TASK = "analysis.tasks.scores_refresh"
MAP_UPDATE_TASK = "analysis.tasks.human_map_update"
MAP_REBUILD_TASK = "analysis.tasks.human_map_rebuild"


def included_responses(stimulus: Stimulus, task_kind: str):
    """The included responses (`annotations.selectors.responses_included`) to this stimulus and kind, in id order."""
    return responses_included(stimulus=stimulus, task_kind=task_kind).order_by("id")


def fold_order(human_map: HumanMap, stimulus: Stimulus) -> list[Response]:
    """The included responses in fold order: those already folded in their sequence, then new ones by id."""
    included = {r.pk: r for r in included_responses(stimulus, human_map.task_kind)}
    folded = [rid for rid in human_map.contributions.order_by("sequence").values_list("response_id", flat=True) if rid in included]
    seen = set(folded)
    return [included[rid] for rid in folded] + [r for rid, r in included.items() if rid not in seen]


def _files_write(human_map: HumanMap, total: np.ndarray | None, fixations: np.ndarray | None) -> None:
    old = [f.name for f in (human_map.sum_file, human_map.fixations_file) if f]
    human_map.revision += 1
    kind, revision = human_map.task_kind, human_map.revision
    if total is not None:
        array_save(human_map.sum_file, f"{kind}-sum-r{revision}.npy", total)
    else:
        human_map.sum_file = ""
    if fixations is not None:
        array_save(human_map.fixations_file, f"{kind}-fixations-r{revision}.npy", fixations)
    else:
        human_map.fixations_file = ""
    human_map.save()
    if old:
        storage = human_map.sum_file.storage
        transaction.on_commit(lambda: [storage.delete(name) for name in old])


def _sigma_range(human_map: HumanMap, contributions: list[HumanMapContribution], *, fresh: bool) -> None:
    """Widen (or, for a rebuild, reset) the map's sigma range with these contributions' sigmas."""
    sigmas = [c.sigma_px for c in contributions if c.sigma_px is not None]
    if not fresh:
        sigmas += [s for s in (human_map.sigma_px_min, human_map.sigma_px_max) if s is not None]
    human_map.sigma_px_min = min(sigmas) if sigmas else None
    human_map.sigma_px_max = max(sigmas) if sigmas else None


def _after_change(human_map: HumanMap, stimulus: Stimulus) -> None:
    enqueue_coalesced_on_commit(SCORES_TASK, stimulus.pk)
    reliability_request(study_id=stimulus.study_id, task_kind=human_map.task_kind)


def _fold(total, fixations, human_map: HumanMap, stimulus: Stimulus, recipe: dict, responses, *, first: int = 0):
    """The one fold: add each response's participant map (by `recipe`) to the running sum and the
    fixation counts, in the given order. Returns (total, fixations, contributions numbered from
    `first`, not saved). An update, a rebuild and the rebuild check all fold through here, so a
    rebuild from the raw responses gives the incremental map's bits."""
    contributions = []
    for i, response in enumerate(responses):
        pmap = response_map(response, stimulus, recipe)
        total = running_sum_add(total, pmap.density)
        if pmap.fixations is not None:
            fixations = pmap.fixations.copy() if fixations is None else fixations + pmap.fixations
        contributions.append(HumanMapContribution(human_map=human_map, response=response, sequence=first + i, sigma_px=pmap.sigma_px))
    return total, fixations, contributions


def _locked_map(stimulus: Stimulus, task_kind: str) -> HumanMap:
    if task_kind not in stimulus.study.task_kinds:
        raise InvalidInput(f"study {stimulus.study.slug} has no task kind {task_kind!r}")
    human_map, _ = HumanMap.objects.get_or_create(
        stimulus=stimulus, task_kind=task_kind, defaults={"recipe": recipe_for(stimulus.study, task_kind)}
    )
    return HumanMap.objects.select_for_update().get(pk=human_map.pk)


def stale_reason(human_map: HumanMap, recipe: dict) -> str | None:
    """Why the stored map no longer matches its raw data, or None."""
    if human_map.recipe != recipe:
        return "the recipe changed"
    folded_out = human_map.contributions.filter(response__trial__participant__status=Participant.Status.EXCLUDED)
    if folded_out.exists():
        return "a folded participant was excluded"
    return None


@transaction.atomic
def human_map_update(*, stimulus_id: int, task_kind: str) -> HumanMap:
    """Fold every included response not yet in the stimulus' map into its running sum, in response
    id order. Costs O(pixels) per new response, whatever n is (the stored sum is read and written
    once; nothing is recomputed over earlier responses); a response is folded exactly once
    (so bursts of update requests collapse: later ones find nothing new). A stale map is rebuilt."""
    stimulus = Stimulus.objects.select_related("study").get(pk=stimulus_id)
    human_map = _locked_map(stimulus, task_kind)
    recipe = recipe_for(stimulus.study, task_kind)
    reason = stale_reason(human_map, recipe)
    if reason:
        log.info("human map %s is stale (%s): rebuilding", human_map.pk, reason)
        return _rebuild(human_map, stimulus, recipe)
    new = list(included_responses(stimulus, task_kind).exclude(contributions__human_map=human_map))
    if not new:
        return human_map
    total = array_load(human_map.sum_file) if human_map.sum_file else None
    fixations = array_load(human_map.fixations_file) if human_map.fixations_file else None
    sequence = human_map.n_participants  # invariant: n_participants == number of contributions
    total, fixations, contributions = _fold(total, fixations, human_map, stimulus, human_map.recipe, new, first=sequence)
    HumanMapContribution.objects.bulk_create(contributions)
    human_map.n_participants = sequence + len(new)
    _sigma_range(human_map, contributions, fresh=False)
    _files_write(human_map, total, fixations)
    _after_change(human_map, stimulus)
    return human_map


def _rebuild(human_map: HumanMap, stimulus: Stimulus, recipe: dict) -> HumanMap:
    responses = fold_order(human_map, stimulus)
    total, fixations, contributions = _fold(None, None, human_map, stimulus, recipe, responses)
    human_map.contributions.all().delete()
    HumanMapContribution.objects.bulk_create(contributions)
    human_map.recipe = recipe
    human_map.n_participants = len(responses)
    _sigma_range(human_map, contributions, fresh=True)
    _files_write(human_map, total, fixations)
    _after_change(human_map, stimulus)
    return human_map


@transaction.atomic
def human_map_rebuild(*, stimulus_id: int, task_kind: str) -> HumanMap:
    """Recompute the map from the raw responses with the study's current recipe (after exclusions or
    a recipe change). Same responses, same order -> the same bits as the incremental map."""
    stimulus = Stimulus.objects.select_related("study").get(pk=stimulus_id)
    human_map = _locked_map(stimulus, task_kind)
    return _rebuild(human_map, stimulus, recipe_for(stimulus.study, task_kind))


def human_map_matches_raw(human_map: HumanMap) -> bool:
    """Whether the stored map is exactly (bit for bit, and in participant count) what a rebuild from
    the raw included responses would store. Computed in memory; nothing is written."""
    stimulus = human_map.stimulus
    responses = fold_order(human_map, stimulus)
    total, _, _ = _fold(None, None, human_map, stimulus, human_map.recipe, responses)
    if human_map.n_participants != len(responses):
        return False
    stored = array_load(human_map.sum_file) if human_map.sum_file else None
    if stored is None or total is None:
        return stored is None and total is None
    return stored.dtype == total.dtype and np.array_equal(stored, total)


@transaction.atomic
def human_map_recipe_set(*, study: Study, task_kind: str, recipe: dict) -> MapRecipe:
    """Choose the recipe of a study's task kind; every map of that kind is rebuilt with it."""
    if task_kind not in study.task_kinds:
        raise InvalidInput(f"study {study.slug} has no task kind {task_kind!r}", fields={"task_kind": ["unknown"]})
    try:
        cleaned = recipe_clean(task_kind, recipe)
    except RecipeInvalid as exc:
        raise InvalidInput(str(exc), fields={"recipe": [str(exc)]}) from None
    chosen, _ = MapRecipe.objects.update_or_create(study=study, task_kind=task_kind, defaults={"recipe": cleaned})
    _rebuild_queue(study.stimuli.filter(role=StimulusRole.MAIN).values_list("id", flat=True), task_kind)
    return chosen


def _rebuild_queue(stimulus_ids, task_kind: str) -> int:

    count = 0
    for stimulus_id in stimulus_ids:
        enqueue_on_commit(MAP_REBUILD_TASK, stimulus_id, task_kind)
        count += 1
    return count


@transaction.atomic
def participant_maps_rebuild(*, participant_id: int) -> int:
    """After a participant is excluded (or re-included): queue a rebuild of every map they answered
    for. Returns how many rebuilds were queued."""
    participant = Participant.objects.get(pk=participant_id)
    stimulus_ids = participant.trials.filter(status=Trial.Status.DONE).values_list("stimulus_id", flat=True)
    return _rebuild_queue(list(stimulus_ids), participant.task_kind)


def maps_pending(*, study: Study | None = None) -> list[tuple[int, str]]:
    """(stimulus id, task kind) pairs whose map is missing an included response, holds an excluded
    participant, or was made with another recipe than the study's: what the sweep queues."""
    responses = responses_included().filter(contributions__isnull=True)
    maps = HumanMap.objects.select_related("stimulus__study")
    if study is not None:
        responses = responses.filter(trial__stimulus__study=study)
        maps = maps.filter(stimulus__study=study)
    pending = set(responses.values_list("trial__stimulus_id", "trial__task_kind").distinct())
    pending |= set(
        maps.filter(contributions__response__trial__participant__status=Participant.Status.EXCLUDED)
        .values_list("stimulus_id", "task_kind")
        .distinct()
    )
    recipes: dict[tuple[int, str], dict] = {}
    for human_map in maps:
        key = (human_map.stimulus.study_id, human_map.task_kind)
        if key not in recipes:
            recipes[key] = recipe_for(human_map.stimulus.study, human_map.task_kind)
        if human_map.recipe != recipes[key]:
            pending.add((human_map.stimulus_id, human_map.task_kind))
    return sorted(pending)


def maps_pending_queue(*, study: Study | None = None) -> int:
    """Queue `human_map_update` (which folds or rebuilds as needed) for every pending map."""

    pending = maps_pending(study=study)
    for stimulus_id, task_kind in pending:
        enqueue_on_commit(MAP_UPDATE_TASK, stimulus_id, task_kind)
    return len(pending)
