"""The options of an import, checked (every bad option listed), and the limits that bound its work.

Options are a JSON object (the API's body, the command's flags). Units: sigma_px in image pixels,
sigma_deg in degrees of visual angle, screen sizes in screen pixels and centimetres, times in ms.
docs/import.md is the researcher's reference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from annotations.task_params import px_per_degree
from annotations.uploads import ArchiveLimits

from ..recipes import SIGMA_DEG_RANGE, SIGMA_PX_RANGE
from .problems import ProblemList

FORMATS = ("fixations-csv", "mit", "maps")
WEIGHTINGS = ("none", "duration")
CSV_COLUMNS = ("participant", "image", "x", "y", "start_ms", "duration_ms",
               "image_left", "image_top", "image_width", "image_height")
# The options each format takes.
FIXATION_OPTIONS = {"sigma_px", "sigma_deg", "weighting", "screen", "outside", "drop_first_fixation"}
FORMAT_OPTIONS = {
    "fixations-csv": FIXATION_OPTIONS | {"coordinates", "columns"},
    "mit": FIXATION_OPTIONS | {"mat_origin", "mat_sample_rate_hz"},
    "maps": {"maps_normalise"},
}


@dataclass(frozen=True)
class ImportLimits:
    """What one import may cost. Sizes in bytes. The CSV is read as a stream: its size is bounded
    only by `max_rows` (and the archive limits when it comes in a zip); memory is about 60 bytes a
    fixation kept. Maps are decoded one at a time and not kept."""

    archive: ArchiveLimits = ArchiveLimits(
        max_members=50_000, max_member_bytes=512 * 1024 * 1024, max_total_bytes=2 * 1024 ** 3, max_ratio=100.0
    )
    max_files: int = 50_000  # files in a folder import (folders are walked, links refused)
    max_rows: int = 2_000_000  # fixation rows in a CSV, or fixations in all .mat files together
    max_fixations_per_map: int = 10_000  # one participant's fixations on one image
    max_participants: int = 100_000
    max_images: int = 20_000
    max_image_pixels: int = 4096 * 4096  # as a stimulus upload
    max_image_bytes: int = 25 * 1024 * 1024
    max_map_bytes: int = 256 * 1024 * 1024  # one map file (PNG, JPEG, .npy, .mat)
    max_line_chars: int = 100_000  # one CSV line


@dataclass(frozen=True)
class KnownStimulus:
    """A stimulus already in the study, which imported data may name: by `name` (its file name),
    by the name without its extension, or by `sha256`. `key` is the caller's identifier (an id)."""

    key: str
    name: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class ImportOptions:
    format: str
    sigma_px: float | None = None
    sigma_deg: float | None = None
    weighting: str = "none"
    px_per_degree: float | None = None  # screen px per degree at the centre of the screen
    outside: str = "refuse"
    drop_first_fixation: bool = False
    coordinates: str = "image"
    columns: dict[str, str] = field(default_factory=dict)
    mat_origin: str = "one_based"
    mat_sample_rate_hz: float = 240.0
    maps_normalise: str = "sum"

    def recipe_request(self) -> dict:
        """The fixation recipe these options ask for (cleaned by `analysis.recipes.recipe_clean`)."""
        sigma = {"sigma_px": self.sigma_px} if self.sigma_px is not None else {"sigma_deg": self.sigma_deg}
        return {"kind": "gaussian_points", **sigma, "weighting": self.weighting}


def _number(raw: dict, key: str, problems: ProblemList, lo: float, hi: float, where: str | None = None) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    name = f"{where}.{key}" if where else key
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.add("options", None, name, f"must be a finite number, got {value!r}")
        return None
    if not lo <= value <= hi:
        problems.add("options", None, name, f"must be between {lo:g} and {hi:g}, got {value!r}")
        return None
    return float(value)


def _choice(raw: dict, key: str, choices: tuple[str, ...], default: str, problems: ProblemList) -> str:
    value = raw.get(key, default)
    if value not in choices:
        problems.add("options", None, key, f"must be one of {', '.join(choices)}, got {value!r}")
        return default
    return value


def _screen(raw: Any, problems: ProblemList) -> float | None:
    """Screen px per degree from {width_px, width_cm, viewing_distance_cm} or {px_per_cm, viewing_distance_cm}."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("options", None, "screen", "must be an object: width_px, width_cm, viewing_distance_cm")
        return None
    unknown = sorted(set(raw) - {"width_px", "width_cm", "px_per_cm", "viewing_distance_cm"})
    for key in unknown:
        problems.add("options", None, f"screen.{key}", "is not a screen field; use width_px and width_cm "
                     "(or px_per_cm) and viewing_distance_cm")
    distance = _number(raw, "viewing_distance_cm", problems, 10, 1000, "screen")
    if raw.get("px_per_cm") is not None:
        per_cm = _number(raw, "px_per_cm", problems, 1, 10_000, "screen")
    else:
        width_px = _number(raw, "width_px", problems, 100, 100_000, "screen")
        width_cm = _number(raw, "width_cm", problems, 1, 10_000, "screen")
        per_cm = width_px / width_cm if width_px and width_cm else None
        if raw.get("width_px") is None or raw.get("width_cm") is None:
            problems.add("options", None, "screen", "needs width_px and width_cm (or px_per_cm)")
    if raw.get("viewing_distance_cm") is None:
        problems.add("options", None, "screen.viewing_distance_cm", "is required with a screen")
    if unknown or not distance or not per_cm:
        return None
    return px_per_degree(per_cm, distance)


def _columns(raw: Any, problems: ProblemList) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        problems.add("options", None, "columns", "must map column names (participant, image, x, ...) to the "
                     "names in your file's header")
        return {}
    for key in sorted(set(raw) - set(CSV_COLUMNS)):
        problems.add("options", None, f"columns.{key}", f"is not a column; columns: {', '.join(CSV_COLUMNS)}")
    return {k: v.strip().lower() for k, v in raw.items() if k in CSV_COLUMNS}


def options_parse(fmt: str, raw: Any, problems: ProblemList) -> ImportOptions | None:
    """The options, checked against the format; adds every problem found and returns None if any."""
    before = problems.total
    if fmt not in FORMATS:
        problems.add(None, None, "format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        problems.add("options", None, None, "options must be a JSON object")
        return None
    allowed = FORMAT_OPTIONS[fmt]
    for key in sorted(set(raw) - allowed):
        other = [f for f, keys in FORMAT_OPTIONS.items() if key in keys]
        hint = (f"only the {' and '.join(other)} format{'s' if len(other) > 1 else ''} take{'' if len(other) > 1 else 's'} it"
                if other else f"its options: {', '.join(sorted(allowed))}")
        problems.add("options", None, key, f"is not an option of the {fmt} format; {hint}")
    sigma_px = _number(raw, "sigma_px", problems, *SIGMA_PX_RANGE)
    sigma_deg = _number(raw, "sigma_deg", problems, *SIGMA_DEG_RANGE)
    if raw.get("sigma_px") is not None and raw.get("sigma_deg") is not None:
        problems.add("options", None, "sigma_px", "give sigma_px or sigma_deg, not both")
    ppd = _screen(raw.get("screen"), problems)
    if raw.get("sigma_deg") is not None and raw.get("screen") is None:
        problems.add("options", None, "sigma_deg", "a sigma in degrees needs the screen geometry (option screen: "
                     "width_px, width_cm, viewing_distance_cm); without it give sigma_px")
    drop_first = raw.get("drop_first_fixation", False)
    if not isinstance(drop_first, bool):
        problems.add("options", None, "drop_first_fixation", f"must be true or false, got {drop_first!r}")
    options = ImportOptions(
        format=fmt,
        sigma_px=sigma_px,
        sigma_deg=sigma_deg,
        weighting=_choice(raw, "weighting", WEIGHTINGS, "none", problems),
        px_per_degree=ppd,
        outside=_choice(raw, "outside", ("refuse", "drop"), "refuse", problems),
        drop_first_fixation=drop_first is True,
        coordinates=_choice(raw, "coordinates", ("image", "screen"), "image", problems),
        columns=_columns(raw.get("columns"), problems),
        mat_origin=_choice(raw, "mat_origin", ("one_based", "zero_based"), "one_based", problems),
        mat_sample_rate_hz=_number(raw, "mat_sample_rate_hz", problems, 1, 100_000) or 240.0,
        maps_normalise=_choice(raw, "maps_normalise", ("sum", "none"), "sum", problems),
    )
    return options if problems.total == before else None


def sigma_problem(options: ImportOptions, problems: ProblemList, file: str | None) -> None:
    """Fixations need a sigma: sigma_px, or sigma_deg with the screen."""
    if options.sigma_px is None and options.sigma_deg is None:
        problems.add("options", None, "sigma_px", "fixations need the Gaussian's sigma: give sigma_px (image px), "
                     "or sigma_deg (degrees) with the screen geometry" + (f" ({file} holds fixations)" if file else ""))
