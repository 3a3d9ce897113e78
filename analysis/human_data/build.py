"""Human maps from an import, by the study's recipe (`analysis.recipes`: the one fixation-to-map
recipe that bubble and mouse data use too).

Per image, as the platform does for collected data: each participant's map at the image's
resolution (fixations: `recipes.participant_map` on the participant's raw fixations; maps: the map
as read), folded in participant order (sorted ids) into a float64 running sum, divided by n
(`analysis.aggregate`). The fixation map is the per-pixel count of every participant's fixations
(`recipes.fixation_counts`), or the binary map the import gave when it has no fixations. A density
map alone is the human map as given; nothing can be split, so no ceiling or floor exists for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..aggregate import mean_map, running_sum_add
from ..recipes import IMPORTED_FIXATIONS, ParticipantMap, participant_map, recipe_clean
from ..split_half import ParticipantStack
from .imported import ImportedData, ImportedImage

NO_PARTICIPANTS = ("only a density map was imported for this image, with no per-participant data: no split-half "
                   "ceiling or floor exists for it, and none is estimated")
NO_FIXATIONS = ("no fixations were imported for this image: NSS and AUC-Judd have no fixation map to use")
NO_FIXATION_CEILING = ("the import holds no per-participant fixations for this image: NSS and AUC-Judd are scored "
                       "against its fixation map, but have no split-half ceiling or floor")


@dataclass(frozen=True, eq=False)
class ImageMaps:
    """An image's human data, built. participants: in fold order; participant_maps: theirs (empty
    for a density map alone); human_map: H x W float64; fixations: H x W int32 fixation counts, or
    the given binary map as bool, or None. no_ceiling / no_fixation_ceiling: None when split-half
    ceilings exist (for all metrics / for NSS and AUC-Judd), else the reason in plain words."""

    image: ImportedImage
    participants: tuple[str, ...]
    participant_maps: tuple[ParticipantMap, ...]
    human_map: np.ndarray
    fixations: np.ndarray | None
    no_ceiling: str | None
    no_fixation_ceiling: str | None

    def stack(self) -> ParticipantStack:
        """The participants' maps (and fixation counts) for split-half ceilings and reliability."""
        if not self.participant_maps:
            raise ValueError(self.no_ceiling or "no participants")
        maps = np.stack([m.density for m in self.participant_maps])
        counts = None
        if all(m.fixations is not None for m in self.participant_maps):
            counts = np.stack([m.fixations for m in self.participant_maps]).astype(np.float32)
        return ParticipantStack(maps, counts)


def _fold(image: ImportedImage, pmaps: list[ParticipantMap]) -> tuple[np.ndarray, np.ndarray | None]:
    total, counts = None, None
    for pmap in pmaps:
        total = running_sum_add(total, pmap.density)
        if pmap.fixations is not None:
            counts = pmap.fixations.copy() if counts is None else counts + pmap.fixations
    return mean_map(total, len(pmaps)), counts


def image_maps_build(image: ImportedImage, recipe: dict | None) -> ImageMaps:
    """The image's human map and fixation map. `recipe`: the fixation recipe (cleaned for
    "fixations"), needed when the image has fixations."""
    participants = tuple(image.participants)
    given = image.fixation_map.load() if image.fixation_map is not None else None
    if image.kind == "fixations":
        if recipe is None:
            raise ValueError("fixations need a recipe (sigma_px or sigma_deg)")
        recipe = recipe_clean(IMPORTED_FIXATIONS, recipe)
        pmaps = [participant_map(image.fixations[p].payload(), recipe, height=image.height, width=image.width)
                 for p in participants]
        human, counts = _fold(image, pmaps)
        return ImageMaps(image, participants, tuple(pmaps), human, counts, None, None)
    if image.kind == "participant_maps":
        pmaps = [ParticipantMap(image.participant_maps[p].load(), None, None) for p in participants]
        human, _ = _fold(image, pmaps)
        return ImageMaps(image, participants, tuple(pmaps), human, given, None,
                         NO_FIXATION_CEILING if given is not None else NO_FIXATIONS)
    if image.kind == "density":
        return ImageMaps(image, (), (), image.density.load(), given, NO_PARTICIPANTS,
                         NO_PARTICIPANTS if given is not None else NO_FIXATIONS)
    raise ValueError(f"{image.name} has no human data")


def human_maps_build(data: ImportedData, recipe: dict | None = None):
    """Each image's ImageMaps, one at a time (a generator: maps are large), in the import's order.
    `recipe` (the study's, for imported fixations) defaults to the one the import asked for."""
    recipe = recipe if recipe is not None else data.recipe
    for image in data.images:
        yield image_maps_build(image, recipe)
