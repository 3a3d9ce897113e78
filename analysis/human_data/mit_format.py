"""The `mit` format: the MIT saliency benchmark layout (MIT1003, MIT300, CAT2000).

Folders are recognised by name, case-insensitive, at any depth (a top folder such as `trainSet/`
is fine); an image's key is its path below its folder without the extension, so CAT2000's
`Stimuli/Action/001.jpg` is `Action/001`:
- `STIMULI/`, `ALLSTIMULI/`, `Stimuli/` (or `images/`): the images. Optional: data whose key no
  image of the import has names a study stimulus instead (`images.py`).
- `FIXATIONMAPS/`, `ALLFIXATIONMAPS/`: `<key>_fixPts.<ext>` a binary map of the fixated pixels;
  `<key>_fixMap.<ext>` and `<key>.<ext>` (CAT2000) a density map (ext: an image format, .npy, .mat).
- `FIXATIONLOCS/<key>.mat` (CAT2000): the binary map in the variable `fixLocs`.
- `DATA/<observer>/<key>.mat`: one observer's fixations on one image, in the variables
  `fixations` (n x 2: x, y), `starts` (n, optional: the first eye-tracker sample of each fixation)
  and `durations` (n, optional, ms) -- what MIT1003's `checkFixations.m` yields as Fix.medianXY,
  Fix.start and Fix.duration (pysaliency saves exactly these). x, y are MATLAB's 1-based pixel
  coordinates by default: the platform's x = x - 1 (pixel k covers [k, k+1) there, [k-1, k) here);
  mat_origin="zero_based" reads them as they are. start_ms = starts / mat_sample_rate_hz * 1000
  (240 Hz: MIT1003's eye tracker). MIT1003's raw `DATA` files (a struct holding DATA.eyeData, raw
  240 Hz samples) hold no fixations: they are refused with that reason, since the platform does
  not detect fixations in raw samples.
Coordinates are image px (the images were shown at their own size); sigma_deg uses the screen's
px per degree as is. Other files (code, readme) are listed in the notes, not read.
"""
from __future__ import annotations

import numpy as np

from .files import IMAGE_EXTENSIONS, FileSet, extension, ignored_note, key_of, role_split
from .fixations import FixationTable
from .images import ImageIndex
from .imported import ImportedImage
from .map_files import MAP_EXTENSIONS, MapUnreadable, map_source, mat_load
from .options import ImportLimits, ImportOptions
from .problems import ProblemList

ROLES = {
    "stimuli": "stimuli", "allstimuli": "stimuli", "images": "stimuli",
    "fixationmaps": "maps", "allfixationmaps": "maps",
    "fixationlocs": "locs",
    "data": "data",
}
SUFFIXES = {"_fixpts": "binary", "_fixmap": "density"}


def _map_role(parts: list[str]) -> tuple[str, str]:
    """(role, key) of a file in a fixation-maps folder."""
    key = key_of(parts)
    for suffix, role in SUFFIXES.items():
        if key.lower().endswith(suffix):
            return role, key[: -len(suffix)]
    return "density", key


class _MitReader:
    def __init__(self, files: FileSet, options: ImportOptions, index: ImageIndex, table: FixationTable,
                 limits: ImportLimits, problems: ProblemList, notes: list[str]):
        self.files, self.options, self.index, self.table = files, options, index, table
        self.limits, self.problems, self.notes = limits, problems, notes

    def read(self) -> None:
        maps, observers, ignored = [], [], []
        for name in self.files.names:
            split = role_split(name, ROLES)
            ext = extension(name)
            if split and split[0] == "stimuli" and ext in IMAGE_EXTENSIONS:
                self.index.add_file(self.files, name, key=key_of(split[1]))
            elif split and split[0] in ("maps", "locs") and ext in MAP_EXTENSIONS:
                role, key = _map_role(split[1]) if split[0] == "maps" else ("binary", key_of(split[1]))
                maps.append((name, role, key, "fixLocs" if split[0] == "locs" else None))
            elif split and split[0] == "data" and ext == ".mat" and len(split[1]) >= 2:
                observers.append((name, split[1][0], key_of(split[1][1:])))
            else:
                ignored.append(name)
        for name, role, key, variable in maps:
            if image := self._image(name, key):
                self._map(name, image, role, variable)
        for name, observer, key in observers:
            if (image := self._image(name, key)) and not self._observer(name, observer, image):
                break
        if note := ignored_note(ignored, "not in a STIMULI, FIXATIONMAPS, FIXATIONLOCS or DATA/<observer> folder, "
                                "or not a file type read there"):
            self.notes.append(note)

    def _image(self, name: str, key: str) -> ImportedImage | None:
        image, reason = self.index.resolve(key)
        if image is None:
            self.problems.add(name, None, None, reason or "unknown image")
        return image

    def _map(self, name: str, image: ImportedImage, role: str, variable: str | None) -> None:
        attribute = "density" if role == "density" else "fixation_map"
        if getattr(image, attribute) is not None:
            self.problems.add(name, None, None, f"a second {'density' if role == 'density' else 'fixation'} map for "
                              f"{image.name}; the first is {getattr(image, attribute).file}")
            return
        source = map_source(self.files, name, self.limits, image, role, self.problems, variable=variable)
        setattr(image, attribute, source)

    def _column(self, variables: dict, field: str, n: int, name: str) -> np.ndarray | None:
        if field not in variables:
            return np.full(n, np.nan)
        values = np.atleast_1d(np.asarray(variables[field])).ravel()
        if values.dtype.kind not in "biuf" or values.size != n:
            self.problems.add(name, None, field, f"must be {n} numbers, one per fixation (got {values.size} "
                              f"of {values.dtype})")
            return None
        return values.astype(np.float64)

    def _observer(self, name: str, observer: str, image: ImportedImage) -> bool:
        """Read one observer's fixations into the table; False once reading must stop."""
        if self.files.size(name) > self.limits.max_map_bytes:
            self.problems.add(name, None, None, f"the file is {self.files.size(name)} bytes; the limit is "
                              f"{self.limits.max_map_bytes}")
            return True
        try:
            variables = mat_load(self.files.read(name))
        except MapUnreadable as exc:
            self.problems.add(name, None, None, str(exc))
            return True
        if "fixations" not in variables:
            raw = any(isinstance(v, np.ndarray) and v.dtype.names and "DATA" in v.dtype.names for v in variables.values())
            self.problems.add(name, None, "fixations", (
                "holds raw eye-tracker samples (DATA.eyeData) but no fixations; the platform does not detect "
                "fixations: extract them first (e.g. with MIT1003's checkFixations.m) and save fixations, "
                "starts, durations" if raw else
                "holds no variable 'fixations' (n x 2: x, y); variables: " +
                (", ".join(sorted(k for k in variables if not k.startswith("__"))) or "none")))
            return True
        fixations = np.asarray(variables["fixations"])
        if fixations.size == 0:
            return True
        fixations = np.atleast_2d(fixations)
        if fixations.ndim != 2 or fixations.shape[1] != 2 or fixations.dtype.kind not in "biuf":
            self.problems.add(name, None, "fixations", f"must be an n x 2 numeric matrix (x, y); it is "
                              f"{'x'.join(map(str, fixations.shape))} of {fixations.dtype}")
            return True
        n = fixations.shape[0]
        starts, durations = self._column(variables, "starts", n, name), self._column(variables, "durations", n, name)
        if starts is None or durations is None:
            return True
        bad_durations = ~np.isnan(durations) & ~(np.isfinite(durations) & (durations > 0))
        bad_starts = np.isinf(starts)
        for field, bad, rule in (("durations", bad_durations, "a finite number > 0 (ms)"),
                                 ("starts", bad_starts, "a finite number")):
            for i in np.flatnonzero(bad)[:20]:
                values = durations if field == "durations" else starts
                self.problems.add(name, int(i) + 1, field, f"must be {rule}, got {values[i]:g}")
        if bad_durations.any() or bad_starts.any():
            return True
        shift = 1.0 if self.options.mat_origin == "one_based" else 0.0
        xy = fixations.astype(np.float64) - shift
        start_ms = starts / self.options.mat_sample_rate_hz * 1000.0
        for i in range(n):
            if not self.table.admit(name, i + 1):
                return False
            self.table.add(image, observer, float(xy[i, 0]), float(xy[i, 1]), float(start_ms[i]),
                           float(durations[i]), self.options.px_per_degree, name, i + 1)
        return True


def mit_read(files: FileSet, options: ImportOptions, index: ImageIndex, table: FixationTable,
             limits: ImportLimits, problems: ProblemList, notes: list[str]) -> None:
    _MitReader(files, options, index, table, limits, problems, notes).read()
