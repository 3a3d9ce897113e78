"""What an import holds once read and checked: images, and per image the human data.

Per image, one of (richest first):
- per-participant fixations (`Fixations`): everything collected data has -- a human map by the
  study's recipe, exact fixation maps for NSS and AUC-Judd, split-half ceilings and floors,
  reliability curves;
- per-participant maps: human map, ceilings and reliability for the map metrics; NSS and AUC-Judd
  only against a fixation map given for the image as a whole;
- a density map only: scored, but no ceiling or floor exists for it (there is nothing to split).
A binary map of the fixated pixels may come with any of them (MIT `_fixPts`, CAT2000 `fixLocs`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .options import ImportOptions


@dataclass(frozen=True, eq=False)
class Fixations:
    """One participant's fixations on one image: temporal order (by start_ms, stable) when every
    start is known, file order otherwise.

    x, y: float64, image px, continuous (pixel (row i, col j) covers [j, j+1) x [i, i+1)); every
    fixation lies in [0, width) x [0, height). start_ms, duration_ms: float64 ms, NaN where the data
    gave none. px_per_degree: image px per degree of visual angle (None without screen geometry).
    """

    x: np.ndarray
    y: np.ndarray
    start_ms: np.ndarray
    duration_ms: np.ndarray
    px_per_degree: float | None

    def __len__(self) -> int:
        return int(self.x.size)

    def payload(self) -> dict:
        """The raw data the recipe reads (JSON-able, lossless): {"fixations": [[x, y, start_ms,
        duration_ms], ...] (null where not given), "px_per_degree": float | null}."""
        def value(v: float) -> float | None:
            return None if np.isnan(v) else float(v)

        rows = [[float(x), float(y), value(s), value(d)]
                for x, y, s, d in zip(self.x, self.y, self.start_ms, self.duration_ms)]
        return {"fixations": rows, "px_per_degree": self.px_per_degree}


@dataclass(frozen=True, eq=False)
class MapSource:
    """A map file of the import, checked when the import was read (readable, finite, non-negative,
    its image's size). `load()` decodes it again (maps are not kept in memory) and returns H x W:
    a density map float64 summing to 1; a participant's map float64 (summing to 1, or as given with
    maps_normalise="none"); a fixation map bool (the fixated pixels)."""

    file: str
    load: Callable[[], np.ndarray] = field(repr=False)


@dataclass(eq=False)
class ImportedImage:
    """One image of the import. name: its path in the import, or the study stimulus's name;
    width x height: px as the platform shows it (EXIF orientation applied); sha256: of the image
    file's bytes (the import's, or the matched stimulus's); stimulus: the key of the study stimulus
    it is (None: a new image, whose bytes `read_bytes()` returns)."""

    name: str
    width: int
    height: int
    sha256: str | None
    stimulus: str | None = None
    read_bytes: Callable[[], bytes] | None = field(default=None, repr=False)
    fixations: dict[str, Fixations] = field(default_factory=dict)
    participant_maps: dict[str, MapSource] = field(default_factory=dict)
    density: MapSource | None = None
    fixation_map: MapSource | None = None
    dropped: int = 0  # fixations dropped as outside the image (option outside="drop")

    @property
    def kind(self) -> str:
        """"fixations", "participant_maps", "density" or "none" (what the human map is built from)."""
        if self.fixations:
            return "fixations"
        if self.participant_maps:
            return "participant_maps"
        return "density" if self.density is not None else "none"

    @property
    def participants(self) -> list[str]:
        """The participants with data on this image, sorted (the fold order)."""
        return sorted(self.fixations or self.participant_maps)

    def summary(self) -> dict:
        return {
            "name": self.name, "width": self.width, "height": self.height, "sha256": self.sha256,
            "stimulus": self.stimulus, "kind": self.kind, "participants": len(self.participants),
            "fixations": sum(len(f) for f in self.fixations.values()), "dropped_fixations": self.dropped,
            "density_map": self.density.file if self.density else None,
            "fixation_map": self.fixation_map.file if self.fixation_map else None,
        }


@dataclass(eq=False)
class ImportedData:
    """A whole import, checked. recipe: the fixation-to-map recipe its options ask for (cleaned;
    None when it holds no fixations); notes: plain sentences about what was read and skipped."""

    format: str
    options: ImportOptions
    images: list[ImportedImage]
    recipe: dict | None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        participants = set()
        for image in self.images:
            participants.update(image.participants)
        return {
            "format": self.format,
            "images": len(self.images),
            "participants": len(participants),
            "fixations": sum(len(f) for image in self.images for f in image.fixations.values()),
            "dropped_fixations": sum(image.dropped for image in self.images),
            "recipe": self.recipe,
            "notes": list(self.notes),
            "per_image": [image.summary() for image in self.images],
        }
