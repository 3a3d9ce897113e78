"""The `fixations-csv` format: one row per fixation (eye-tracker exports: EyeLink Data Viewer,
Tobii, Gazepoint, or anything with these columns).

Every .csv file of the import is read (same columns in each), as a stream: UTF-8 (a BOM is
allowed), comma, semicolon or tab separated (whichever the header line holds most), a header row,
column names case-insensitive, other columns ignored. Columns (the option `columns` maps these
names to the file's own, e.g. {"x": "CURRENT_FIX_X"}):
- participant, image, x, y: required. image names an image of the import or of the study
  (`images.py`). x, y: image px (coordinates="image", default) or screen px (coordinates="screen").
- start_ms, duration_ms: optional (an empty cell: not given); duration_ms > 0, required for
  duration weighting.
- image_left, image_top, image_width, image_height: where the image was on the screen and its
  displayed size, in screen px; required with screen coordinates (image px = (screen px - left) *
  image width / displayed width); with image coordinates image_width alone may give the displayed
  size, which sigma_deg needs when the image was not shown at its own size. The displayed size must
  keep the image's aspect ratio (within 1%) and stay the same for a participant's rows on an image.
Limits: `ImportLimits.max_rows` rows, `max_line_chars` per line (Python's csv module also
refuses a cell over 131,072 characters); a file that is not UTF-8 stops at the bad line.
"""
from __future__ import annotations

import csv
import io
import itertools
import math
from dataclasses import dataclass

from .fixations import FixationTable
from .imported import ImportedImage
from .options import ImportLimits, ImportOptions
from .problems import ProblemList

REQUIRED = ("participant", "image", "x", "y")
PLACEMENT = ("image_left", "image_top", "image_width", "image_height")
MAX_PARTICIPANT_CHARS = 200
ASPECT_TOLERANCE = 0.01


class _LineTooLong(Exception):
    pass


def _lines(text: io.TextIOBase, max_chars: int):
    while line := text.readline(max_chars + 1):
        if len(line) > max_chars and not line.endswith("\n"):
            raise _LineTooLong
        yield line


@dataclass
class _Unknown:
    first_row: int
    rows: int
    reason: str


class _CsvFile:
    """One CSV file being read into the fixation table."""

    def __init__(self, name: str, options: ImportOptions, index, table: FixationTable, problems: ProblemList):
        self.name, self.options, self.index, self.table, self.problems = name, options, index, table, problems
        self.columns: dict[str, int] = {}
        self.unknown: dict[str, _Unknown] = {}
        self.placements: dict[tuple[int, str], tuple[tuple[float, ...], int]] = {}

    def header(self, cells: list[str]) -> bool:
        names = [c.strip().lower() for c in cells]
        wanted = {c: self.options.columns.get(c, c) for c in REQUIRED + ("start_ms", "duration_ms") + PLACEMENT}
        needed = list(REQUIRED)
        if self.options.coordinates == "screen":
            needed += PLACEMENT
        if self.options.weighting == "duration":
            needed.append("duration_ms")
        ok = True
        for column, name in wanted.items():
            if names.count(name) > 1:
                self.problems.add(self.name, 1, column, f"the header holds the column {name!r} twice")
                ok = False
            elif name in names:
                self.columns[column] = names.index(name)
            elif column in needed:
                why = " (screen coordinates need it)" if column in PLACEMENT else (
                    " (duration weighting needs it)" if column == "duration_ms" else "")
                self.problems.add(self.name, 1, column, f"missing column {name!r}{why}")
                ok = False
        return ok

    def _cell(self, cells: list[str], column: str) -> str | None:
        i = self.columns.get(column)
        return None if i is None or i >= len(cells) else cells[i].strip()

    def _number(self, cells, column: str, line: int, *, required: bool, positive: bool = False) -> float | None:
        """The cell's number; NaN for an absent optional value; None (and a problem) when bad."""
        text = self._cell(cells, column)
        if not text:
            if required:
                self.problems.add(self.name, line, column, "is empty")
                return None
            return math.nan
        try:
            value = float(text)
        except ValueError:
            hint = " (use '.' as the decimal mark)" if "," in text else ""
            self.problems.add(self.name, line, column, f"{text[:40]!r} is not a number{hint}")
            return None
        if column in ("x", "y"):
            return value  # not finite or outside: the table decides (problem, or dropped)
        if not math.isfinite(value) or (positive and value <= 0):
            self.problems.add(self.name, line, column, f"must be a finite number{' > 0' if positive else ''}, got {text[:40]!r}")
            return None
        return value

    def _image(self, cells, line: int) -> ImportedImage | None:
        name = self._cell(cells, "image") or ""
        image, reason = self.index.resolve(name)
        if image is None:
            entry = self.unknown.setdefault(name, _Unknown(line, 0, reason or ""))
            entry.rows += 1
        return image

    def _scale(self, cells, line: int, image: ImportedImage, participant: str) -> tuple[float, float, float] | None:
        """(left, top, image px per screen px) from the placement columns; (0, 0, 1) without them."""
        screen = self.options.coordinates == "screen"
        if not screen and "image_width" not in self.columns:
            return 0.0, 0.0, 1.0
        used = PLACEMENT if screen else tuple(c for c in ("image_width", "image_height") if c in self.columns)
        values = {c: self._number(cells, c, line, required=True, positive=c in ("image_width", "image_height"))
                  for c in used}
        if any(v is None for v in values.values()):
            return None
        scale = image.width / values["image_width"]
        if "image_height" in values and abs(image.height / values["image_height"] - scale) > ASPECT_TOLERANCE * scale:
            self.problems.add(self.name, line, "image_height", f"the displayed size {values['image_width']:g}x"
                              f"{values['image_height']:g} does not keep the aspect ratio of {image.name} "
                              f"({image.width}x{image.height})")
            return None
        placement = tuple(values[c] for c in used)
        first = self.placements.setdefault((id(image), participant), (placement, line))
        if first[0] != placement:
            self.problems.add(self.name, line, "image_width" if not screen else "image_left",
                              f"the image's placement on the screen differs from row {first[1]} for the same "
                              "participant and image")
            return None
        return values.get("image_left", 0.0), values.get("image_top", 0.0), scale

    def row(self, cells: list[str], line: int) -> bool:
        """Read one data row into the table; False when reading must stop."""
        if not self.table.admit(self.name, line):
            return False
        participant = self._cell(cells, "participant") or ""
        if not participant or len(participant) > MAX_PARTICIPANT_CHARS:
            self.problems.add(self.name, line, "participant",
                              "is empty" if not participant else f"is over {MAX_PARTICIPANT_CHARS} characters")
        image = self._image(cells, line)
        x = self._number(cells, "x", line, required=True)
        y = self._number(cells, "y", line, required=True)
        start = self._number(cells, "start_ms", line, required=False)
        duration = self._number(cells, "duration_ms", line, required=False, positive=True)
        if image is None or not participant or len(participant) > MAX_PARTICIPANT_CHARS or None in (x, y, start, duration):
            return True
        placement = self._scale(cells, line, image, participant)
        if placement is None:
            return True
        left, top, scale = placement
        if self.options.coordinates == "screen":
            x, y = (x - left) * scale, (y - top) * scale
        ppd = None if self.options.px_per_degree is None else self.options.px_per_degree * scale
        return self.table.add(image, participant, x, y, start, duration, ppd, self.name, line)

    def finish(self) -> None:
        for entry in self.unknown.values():
            rows = f" (in {entry.rows} rows, the first shown)" if entry.rows > 1 else ""
            self.problems.add(self.name, entry.first_row, "image", entry.reason + rows)


def csv_read(name: str, handle, options: ImportOptions, index, table: FixationTable, limits: ImportLimits,
             problems: ProblemList) -> None:
    """Stream one CSV file's rows into `table`, adding every problem found."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    reader_file = _CsvFile(name, options, index, table, problems)
    line = 1
    try:
        lines = _lines(text, limits.max_line_chars)
        first = next(lines, "")
        if not first.strip():
            problems.add(name, 1, None, "the file is empty; it needs a header row (participant, image, x, y, ...)")
            return
        delimiter = max(",;\t", key=first.count)
        reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
        if not reader_file.header(next(reader)):
            return
        for cells in reader:
            line = reader.line_num
            if any(c.strip() for c in cells) and not reader_file.row(cells, line):
                break
    except UnicodeDecodeError:
        problems.add(name, line + 1, None, "the file is not UTF-8 text (the bad bytes are at or a few lines after this "
                     "line; nothing from here on was read)")
    except _LineTooLong:
        problems.add(name, line + 1, None, f"a line is over {limits.max_line_chars} characters (nothing after it was read)")
    except csv.Error as exc:
        problems.add(name, line + 1, None, f"the CSV cannot be read here ({exc}; nothing after it was read)")
    finally:
        text.detach()
    reader_file.finish()
