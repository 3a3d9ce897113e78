"""Fixation rows as they are read, kept compactly, then grouped into each participant's fixations
on each image (`Fixations`). Shared by every format that carries fixations.

Rules applied to every row: the coordinates are finite and inside the image, x in [0, width) and
y in [0, height) in image px (outside: a problem, or with the option outside="drop" the fixation
is dropped and counted); with duration weighting every fixation needs its duration. Bounded work:
at most `max_rows` rows read in all, valid or not (reading stops there), `max_participants` participants and
`max_fixations_per_map` fixations of one participant on one image. Memory: about 60 bytes a row.
"""
from __future__ import annotations

import math
from array import array

import numpy as np

from .imported import Fixations, ImportedImage
from .options import ImportLimits, ImportOptions
from .problems import ProblemList


class FixationTable:
    def __init__(self, options: ImportOptions, limits: ImportLimits, problems: ProblemList):
        self.options, self.limits, self.problems = options, limits, problems
        self.images: list[ImportedImage] = []
        self._image_ids: dict[int, int] = {}
        self.participants: list[str] = []
        self._participant_ids: dict[str, int] = {}
        self.sources: list[str] = []
        self._source_ids: dict[str, int] = {}
        self._ints = {k: array("i") for k in ("image", "participant", "source")}
        self._rows = array("q")
        self._floats = {k: array("d") for k in ("x", "y", "start", "duration", "ppd")}
        self.full = False
        self.seen = 0

    def __len__(self) -> int:
        return len(self._rows)

    def _id(self, ids: dict, values: list, key, value) -> int:
        if key not in ids:
            ids[key] = len(values)
            values.append(value)
        return ids[key]

    def admit(self, source: str, row: int | None) -> bool:
        """Count one row read (CSV data row or .mat fixation, valid or not); False, with a problem
        once, when `max_rows` rows were read already: reading stops there."""
        if self.full:
            return False
        if self.seen >= self.limits.max_rows:
            self.problems.add(source, row, None, f"more than {self.limits.max_rows} fixation rows; that is the limit "
                              "(nothing from this row on was read)")
            self.full = True
            return False
        self.seen += 1
        return True

    def _outside(self, image: ImportedImage, x: float, y: float, source: str, row: int | None) -> None:
        if self.options.outside == "drop":
            image.dropped += 1
            return
        x_bad = not (math.isfinite(x) and 0 <= x < image.width)
        if not (math.isfinite(x) and math.isfinite(y)):
            problem = f"the fixation's coordinates ({x:g}, {y:g}) are not finite numbers"
        else:
            problem = (f"the fixation ({x:g}, {y:g}) is outside the image {image.name} ({image.width}x{image.height} "
                       f"px: x in [0, {image.width}), y in [0, {image.height}))")
        self.problems.add(source, row, "x" if x_bad else "y", problem)

    def add(self, image: ImportedImage, participant: str, x: float, y: float, start: float, duration: float,
            ppd: float | None, source: str, row: int | None) -> bool:
        """Record one admitted fixation (start, duration: NaN when not given); False once reading must stop."""
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < image.width and 0 <= y < image.height):
            self._outside(image, x, y, source, row)
            return True
        if self.options.weighting == "duration" and math.isnan(duration):
            self.problems.add(source, row, "duration_ms", "duration weighting needs every fixation's duration")
            return True
        if participant not in self._participant_ids and len(self.participants) >= self.limits.max_participants:
            self.problems.add(source, row, "participant", f"more than {self.limits.max_participants} participants; "
                              "that is the limit (nothing after this row was read)")
            self.full = True
            return False
        self._ints["image"].append(self._id(self._image_ids, self.images, id(image), image))
        self._ints["participant"].append(self._id(self._participant_ids, self.participants, participant, participant))
        self._ints["source"].append(self._id(self._source_ids, self.sources, source, source))
        self._rows.append(-1 if row is None else row)
        for key, value in (("x", x), ("y", y), ("start", start), ("duration", duration),
                           ("ppd", math.nan if ppd is None else ppd)):
            self._floats[key].append(value)
        return True

    def group(self) -> None:
        """Set each image's `fixations` (participant -> Fixations); adds a problem per map over the limit."""
        if not len(self._rows):
            return
        ints = {k: np.frombuffer(v, dtype=np.int32) for k, v in self._ints.items()}
        floats = {k: np.frombuffer(v, dtype=np.float64) for k, v in self._floats.items()}
        rows = np.frombuffer(self._rows, dtype=np.int64)
        order = np.lexsort((np.arange(rows.size), ints["participant"], ints["image"]))
        keys = ints["image"][order].astype(np.int64) * (len(self.participants) + 1) + ints["participant"][order]
        starts = np.flatnonzero(np.diff(keys, prepend=-1))
        for begin, end in zip(starts, np.append(starts[1:], order.size)):
            picked = order[begin:end]
            image, participant = self.images[ints["image"][picked[0]]], self.participants[ints["participant"][picked[0]]]
            if picked.size > self.limits.max_fixations_per_map:
                first = picked[self.limits.max_fixations_per_map]
                self.problems.add(self.sources[ints["source"][first]], int(rows[first]) if rows[first] >= 0 else None,
                                  None, f"participant {participant!r} has {picked.size} fixations on {image.name}; the "
                                  f"limit is {self.limits.max_fixations_per_map} per participant and image")
                continue
            start = floats["start"][picked]
            if not np.isnan(start).any():
                picked = picked[np.argsort(start, kind="stable")]
            if self.options.drop_first_fixation:
                picked = picked[1:]
            if picked.size == 0:
                continue
            ppd = float(floats["ppd"][picked[0]])
            image.fixations[participant] = Fixations(
                x=floats["x"][picked].copy(), y=floats["y"][picked].copy(), start_ms=floats["start"][picked].copy(),
                duration_ms=floats["duration"][picked].copy(), px_per_degree=None if math.isnan(ppd) else ppd,
            )
