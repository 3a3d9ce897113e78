"""Human data recorded elsewhere, imported: eye-tracker fixations (CSV), the MIT saliency benchmark
layout, and maps per image or per participant (pure: numpy, scipy, Pillow; no Django).

    data = read_import(path_or_files, "fixations-csv", {"sigma_px": 25})   # or raises ImportProblems
    for maps in human_maps_build(data):                                     # by the fixation recipe
        maps.human_map, maps.fixations, maps.no_ceiling, maps.stack()

`read_import` reads and checks everything first and stores nothing; every problem comes back at
once (file, row, field, problem). docs/import.md describes each format with a worked example.
"""
from .build import ImageMaps, human_maps_build, image_maps_build
from .imported import Fixations, ImportedData, ImportedImage, MapSource
from .options import FORMATS, ImportLimits, ImportOptions, KnownStimulus
from .problems import ImportProblems, Problem
from .reader import read_import

__all__ = [
    "FORMATS",
    "Fixations",
    "ImageMaps",
    "ImportLimits",
    "ImportOptions",
    "ImportProblems",
    "ImportedData",
    "ImportedImage",
    "KnownStimulus",
    "MapSource",
    "Problem",
    "human_maps_build",
    "image_maps_build",
    "read_import",
]
