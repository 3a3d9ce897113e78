"""Writes of the analysis app (keyword-only, typed, atomic): human maps, scores, reliability.

The public names are re-exported here: `from analysis import services; services.human_map_update(...)`.
"""
from .maps import (
    fold_order,
    human_map_fixations,
    human_map_mean,
    human_map_rebuild,
    human_map_recipe_set,
    human_map_update,
    included_responses,
    maps_pending,
    maps_pending_queue,
    participant_maps_rebuild,
    recipe_for,
    response_map,
    stale_reason,
)
from .reliability import (
    reliability_compute,
    reliability_params_set,
    reliability_refresh,
    reliability_request,
    stimuli_without_responses,
)
from .scores import ScoresRefreshed, scores_refresh

__all__ = [
    "ScoresRefreshed",
    "fold_order",
    "human_map_fixations",
    "human_map_mean",
    "human_map_rebuild",
    "human_map_recipe_set",
    "human_map_update",
    "included_responses",
    "maps_pending",
    "maps_pending_queue",
    "participant_maps_rebuild",
    "recipe_for",
    "reliability_compute",
    "reliability_params_set",
    "reliability_refresh",
    "reliability_request",
    "response_map",
    "scores_refresh",
    "stale_reason",
    "stimuli_without_responses",
]
