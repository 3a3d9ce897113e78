"""`read_import`: one import, read and checked whole, or refused with every problem found."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from ..recipes import IMPORTED_FIXATIONS, RecipeInvalid, recipe_clean
from .csv_format import csv_read
from .files import IMAGE_EXTENSIONS, FileSet, extension, fileset_open, ignored_note
from .fixations import FixationTable
from .images import ImageIndex
from .imported import ImportedData, ImportedImage
from .maps_format import maps_read
from .mit_format import mit_read
from .options import ImportLimits, ImportOptions, KnownStimulus, options_parse, sigma_problem
from .problems import ProblemList


def _csv_format(files: FileSet, options: ImportOptions, index: ImageIndex, table: FixationTable,
                limits: ImportLimits, problems: ProblemList, notes: list[str]) -> None:
    csvs = [n for n in files.names if extension(n) == ".csv"]
    if not csvs:
        problems.add(None, None, None, "the import holds no .csv file of fixations")
    for name in files.names:
        if extension(name) in IMAGE_EXTENSIONS:
            index.add_file(files, name)
    if note := ignored_note([n for n in files.names if extension(n) not in IMAGE_EXTENSIONS + (".csv",)],
                            "neither a .csv file nor an image"):
        notes.append(note)
    for name in csvs:
        if table.full:
            break
        with files.open(name) as handle:
            csv_read(name, handle, options, index, table, limits, problems)


def _no_data(image: ImportedImage, named: bool) -> str:
    if image.dropped:
        return (f"all {image.dropped} fixations on this image were outside it and dropped (outside=\"drop\"); "
                "it has no data left")
    if named:
        return "every fixation on this image was dropped (drop_first_fixation); it has no data left"
    return "no fixations or maps of the import name this image"


def _checked(images: list[ImportedImage], index: ImageIndex, options: ImportOptions, limits: ImportLimits,
             problems: ProblemList, complete: bool) -> dict | None:
    """Checks over the whole import (those about missing data only when it was read to the end and
    no row problem already explains it); the fixation recipe when it holds fixations."""
    if complete and not images and not problems:
        problems.add(None, None, None, "the import holds no human data")
    for image in images:
        named = id(image) in index.named
        if complete and image.kind == "none" and not (named and problems and not image.dropped):
            problems.add(image.name, None, None, _no_data(image, named))
    participants = {p for image in images for p in image.participant_maps}
    if len(participants) > limits.max_participants:
        problems.add(None, None, "participant", f"{len(participants)} participants; the limit is {limits.max_participants}")
    if not any(image.fixations for image in images):
        return None
    if options.format != "fixations-csv":  # a CSV's missing sigma was named before reading it
        sigma_problem(options, problems, next(i.name for i in images if i.fixations))
    if options.sigma_px is None and options.sigma_deg is None:
        return None
    try:
        return recipe_clean(IMPORTED_FIXATIONS, options.recipe_request())
    except RecipeInvalid as exc:
        problems.add("options", None, "sigma_px", str(exc))
        return None


def read_import(
    source: str | os.PathLike | Mapping[str, bytes],
    format: str,
    options: dict | None = None,
    *,
    stimuli: Sequence[KnownStimulus] = (),
    limits: ImportLimits = ImportLimits(),
) -> ImportedData:
    """Read and check one import of human data recorded elsewhere.

    source: a folder, a .zip or a single file (path), or uploaded files (name -> bytes; a .zip
    among them is expanded under the stimulus-upload rules). format: "fixations-csv", "mit" or
    "maps". options: the JSON options (docs/import.md). stimuli: the study's stimuli, which the
    data may name instead of shipping the images. Returns ImportedData; raises ImportProblems
    listing every problem (file, row, field, problem) when anything is wrong. Reads, never writes.
    """
    problems = ProblemList()
    parsed = options_parse(format, options, problems)
    problems.raise_if_any()
    files = fileset_open(source, limits, problems)
    problems.raise_if_any()
    if parsed.format == "fixations-csv":
        sigma_problem(parsed, problems, None)
    index, notes = ImageIndex(stimuli, limits, problems), []
    table = FixationTable(parsed, limits, problems)
    if parsed.format == "fixations-csv":
        _csv_format(files, parsed, index, table, limits, problems, notes)
    elif parsed.format == "mit":
        mit_read(files, parsed, index, table, limits, problems, notes)
    else:
        maps_read(files, parsed, index, limits, problems, notes)
    table.group()
    images = index.images()
    recipe = _checked(images, index, parsed, limits, problems, complete=not table.full)
    problems.raise_if_any()
    return ImportedData(format=parsed.format, options=parsed, images=images, recipe=recipe, notes=notes)
