"""Reading a zip of stimulus images with a CSV of labels, safely (pure: zipfile + csv, no Django).

Nothing from the archive touches the file system: members are read into memory, bounded, and the
caller stores what it accepts under names of its own. Refused, each with a message naming the member
or the CSV row: names that are absolute, hold a drive letter or a `..` part; symbolic links,
devices and other non-regular entries (an entry without file-type bits, as Python's `writestr` and
Windows tools write them, is a regular file); encrypted or damaged members; archives with more
members, more bytes per member or in total, or a higher compression ratio per member or in all than
the limits (zip bombs) -- decided from the central directory before anything is decompressed, then
enforced while streaming each member (declared sizes can lie). Directory entries and the usual
desktop clutter (`__MACOSX/`, `.DS_Store`, `Thumbs.db`, `._*`) are skipped.

The CSV (`labels.csv` inside the zip, or given separately) has a header row; columns, in any order:
`file` (required: the member's path in the zip), `class` (ImageNet index or name; empty: explain the
model's top class), `condition` (default `original`), `source` (for a variant: the `file` of its
source image in the same upload, or the name of a stimulus already in the study), `name`,
`role` (main, catch, practice) and `known_region` (a box "x0 y0 x1 y1" in image pixels; required
for catch rows, optional for practice rows).
Every image in the zip must be listed, every listed file must be in the zip.
"""
from __future__ import annotations

import csv
import difflib
import io
import posixpath
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Callable

from .regions import RegionInvalid, region_parse

COLUMNS = ("file", "class", "condition", "source", "name", "role", "known_region")
ROLES = ("main", "catch", "practice")
SKIPPED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
MAX_PROBLEMS_SHOWN = 50
READ_CHUNK_BYTES = 64 * 1024
_MSDOS_DIRECTORY = 0x10  # FILE_ATTRIBUTE_DIRECTORY, in the low byte of the external attributes
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONDITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


class UploadRejected(ValueError):
    """The upload is refused; `problems` lists every reason found (one line each), `field` says
    which part of the request they concern ("archive" or "labels")."""

    def __init__(self, problems: list[str], *, field: str):
        shown = problems[:MAX_PROBLEMS_SHOWN]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more problems")
        super().__init__("; ".join(shown))
        self.problems = shown
        self.field = field


@dataclass(frozen=True)
class ArchiveLimits:
    """What one upload may make the server decompress (sizes in bytes, uncompressed unless named).

    `max_ratio` bounds uncompressed / compressed bytes twice: for each member of `ratio_min_bytes`
    or more, and for all members read taken together once they declare `ratio_min_bytes` or more
    (so a hundred small members of zeros are caught like one big one). What is decompressed is
    thus at most max(ratio_min_bytes, max_ratio x the compressed bytes) and `max_total_bytes`."""

    max_members: int = 2000
    max_member_bytes: int = 25 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_ratio: float = 100.0
    ratio_min_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class LabelRow:
    line: int  # line number in the CSV (the header is line 1)
    file: str
    class_value: str
    condition: str
    source: str
    name: str
    role: str
    known_region: tuple[float, float, float, float] | None

    @property
    def where(self) -> str:
        return f"labels row {self.line} ({self.file})"


@dataclass
class ZipUpload:
    files: dict[str, bytes]  # member path -> bytes, every listed image
    rows: list[LabelRow]  # in CSV order


def member_name_problem(name: str) -> str | None:
    """Why a member name is unsafe, or None. Backslashes count as separators (Windows tools)."""
    if not name or "\x00" in name:
        return "an empty or NUL-holding name"
    normal = name.replace("\\", "/")
    if normal.startswith("/"):
        return "an absolute path"
    if _DRIVE.match(normal):
        return "a drive letter"
    if ".." in normal.split("/"):
        return "a '..' part (path traversal)"
    return None


def _skipped(name: str) -> bool:
    base = posixpath.basename(name.rstrip("/"))
    return name.endswith("/") or name.startswith("__MACOSX/") or base in SKIPPED_NAMES or base.startswith("._")


def _type_problem(info: zipfile.ZipInfo) -> str | None:
    """Why the entry is not a regular file, or None.

    Unix tools record the file type in the high 16 bits of the external attributes (Info-ZIP,
    macOS Archive Utility: 0o100644 for a file); Python's `ZipFile.writestr` records bare
    permissions (0o600) without a type, and Windows tools only MS-DOS attributes in the low byte.
    An entry without type bits is a regular file; symbolic links, directories (not named with a
    trailing '/', which are skipped), devices, FIFOs and sockets are refused."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if stat.S_ISLNK(kind):
        return f"{info.filename!r} is a symbolic link; only regular files are accepted"
    if stat.S_ISDIR(kind) or info.external_attr & _MSDOS_DIRECTORY:
        return f"{info.filename!r} is a directory entry; only regular files are accepted"
    if kind and not stat.S_ISREG(kind):
        return f"{info.filename!r} is not a regular file (a device, FIFO or socket); only regular files are accepted"
    return None


def _entry_problem(info: zipfile.ZipInfo, limits: ArchiveLimits) -> str | None:
    """Why one central-directory entry is refused, from what it declares, or None."""
    if problem := _type_problem(info):
        return problem
    if info.flag_bits & 0x1:
        return f"{info.filename!r} is encrypted"
    if info.file_size > limits.max_member_bytes:
        return f"{info.filename!r} is {info.file_size} bytes uncompressed; the limit per file is {limits.max_member_bytes}"
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_min_bytes and ratio > limits.max_ratio:
        return (
            f"{info.filename!r} expands {ratio:.0f} times ({info.compress_size} -> {info.file_size} bytes), "
            f"above the limit of {limits.max_ratio:.0f} (a decompression bomb?)"
        )
    return None


def _totals_problems(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> list[str]:
    """The limits on all members read, together: their count, declared size and expansion ratio."""
    problems = []
    if len(infos) > limits.max_members:
        problems.append(f"the zip holds {len(infos)} files; the limit is {limits.max_members}")
    declared = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    if declared > limits.max_total_bytes:
        problems.append(f"the zip expands to {declared} bytes; the limit is {limits.max_total_bytes}")
    if declared >= limits.ratio_min_bytes and declared > limits.max_ratio * max(compressed, 1):
        problems.append(
            f"the zip's {len(infos)} files expand {declared / max(compressed, 1):.0f} times in all ({compressed} -> "
            f"{declared} bytes), above the limit of {limits.max_ratio:.0f} (a decompression bomb?)"
        )
    return problems


def archive_members(fileobj: IO[bytes], *, limits: ArchiveLimits) -> dict[str, bytes]:
    """Every accepted member (normalised path -> bytes). Raises UploadRejected listing all problems.

    Everything is decided from the central directory (names, types, declared sizes, count, totals,
    ratios) before one byte is decompressed; reading then streams each member and stops as soon as
    it passes its declared size (see `_member_read`), so a lying header costs at most one chunk."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise UploadRejected([f"the file is not a readable zip archive ({exc})"], field="archive") from None
    with archive:
        infos = [info for info in archive.infolist() if not _skipped(info.filename.replace("\\", "/"))]
        problems = []
        for info in infos:
            unsafe = member_name_problem(info.filename)
            problem = f"{info.filename!r} has {unsafe}" if unsafe else _entry_problem(info, limits)
            if problem:
                problems.append(problem)
        names = [info.filename.replace("\\", "/").removeprefix("./") for info in infos]
        problems += [f"{name!r} is in the zip twice" for name in sorted({n for n in names if names.count(n) > 1})]
        problems += _totals_problems(infos, limits)
        if problems:
            raise UploadRejected(problems, field="archive")
        return {name: _member_read(archive, info) for info, name in zip(infos, names)}


def _member_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, decompressed a chunk at a time; refused once they pass the declared size
    (which the caller checked against the limits), when the data are damaged or the CRC is wrong."""
    chunks, size = [], 0
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > info.file_size:
                    raise UploadRejected(
                        [f"{info.filename!r} expands beyond its declared {info.file_size} bytes (a decompression bomb?)"],
                        field="archive",
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
        raise UploadRejected([f"{info.filename!r} cannot be read from the zip ({exc})"], field="archive") from None
    return b"".join(chunks)


def _header(reader) -> list[str]:
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except StopIteration:
        raise UploadRejected(["the labels CSV is empty; it needs a header row (file, class, ...)"], field="labels") from None
    problems = []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}; columns: file (required), {', '.join(COLUMNS[1:])}")
    if "file" not in header:
        problems.append("the labels CSV has no 'file' column")
    if len(set(header)) != len(header):
        problems.append("a column name appears twice in the labels CSV header")
    if problems:
        raise UploadRejected(problems, field="labels")
    return header


def _row_parse(line: int, values: dict[str, str], class_resolve: Callable[[str], object] | None) -> tuple[LabelRow, list[str]]:
    problems = []
    file = values.get("file", "").strip().replace("\\", "/").removeprefix("./")
    where = f"labels row {line}" + (f" ({file})" if file else "")
    if not file:
        problems.append(f"{where}: 'file' is empty")
    class_value = values.get("class", "").strip()
    if class_value and class_resolve is not None:
        try:
            class_resolve(class_value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    condition = values.get("condition", "").strip() or "original"
    if not _CONDITION.match(condition):
        problems.append(f"{where}: condition {condition!r} must be 1-64 letters, digits, '_', '.', '+' or '-'")
    role = values.get("role", "").strip().lower() or "main"
    if role not in ROLES:
        problems.append(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    region, region_text = None, values.get("known_region", "").strip()
    if region_text:
        parsed = None
        try:
            parsed = region_parse(region_text)
        except RegionInvalid:
            pass
        if isinstance(parsed, list):
            region = tuple(parsed)
        else:
            problems.append(f"{where}: known_region {region_text!r} must be four numbers x0 y0 x1 y1")
    if role == "catch" and region is None and not region_text:
        problems.append(f"{where}: a catch stimulus needs its known_region (x0 y0 x1 y1 in image pixels)")
    if role == "main" and region_text:
        problems.append(f"{where}: known_region is only for rows with role 'catch' or 'practice'")
    source = values.get("source", "").strip().replace("\\", "/").removeprefix("./")
    if source and source == file:
        problems.append(f"{where}: an image cannot be its own source")
    if source and condition == "original":
        problems.append(f"{where}: a variant of {source!r} needs a condition other than 'original'")
    row = LabelRow(line, file, class_value, condition, source, values.get("name", "").strip()[:200], role, region)
    return row, problems


def labels_parse(data: bytes, *, max_rows: int, class_resolve: Callable[[str], object] | None = None) -> list[LabelRow]:
    """Rows of a labels CSV (UTF-8, BOM allowed; comma, semicolon or tab separated). Raises
    UploadRejected listing every problem with its row number. `class_resolve` (e.g. the ImageNet
    lookup) raises ValueError for an unknown class."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadRejected(["the labels CSV is not UTF-8 text"], field="labels") from None
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if any(d in first for d in ",;\t") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = _header(reader)
    rows, problems, seen = [], [], {}
    for values in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in values):
            continue
        if len(values) > len(header):
            problems.append(f"labels row {line}: {len(values)} cells for {len(header)} columns")
            continue
        row, row_problems = _row_parse(line, dict(zip(header, values)), class_resolve)
        problems += row_problems
        if row.file and row.file in seen:
            problems.append(f"labels row {line}: {row.file!r} is already listed in row {seen[row.file]}")
        seen.setdefault(row.file, line)
        rows.append(row)
    if not rows and not problems:
        problems.append("the labels CSV lists no files")
    if len(rows) > max_rows:
        problems.append(f"the labels CSV lists {len(rows)} files; the limit is {max_rows}")
    if problems:
        raise UploadRejected(problems, field="labels")
    return rows


def rows_check(rows: list[LabelRow], files: dict[str, bytes]) -> None:
    """Every row's file is in the zip, every zip image is listed, and a source named by a row that
    is itself in this upload is an original (no variants of variants)."""
    problems, variants = [], {}
    by_file = {row.file: row for row in rows}
    for row in rows:
        if row.source:
            if (row.source, row.condition) in variants:
                first = variants[(row.source, row.condition)]
                problems.append(f"{row.where}: {row.source!r} has condition {row.condition!r} already in row {first}")
            variants.setdefault((row.source, row.condition), row.line)
        if row.file not in files:
            hint = difflib.get_close_matches(row.file, list(files), n=1)
            problems.append(f"{row.where}: the file is not in the zip" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        source = by_file.get(row.source)
        if source is not None and source.source:
            problems.append(f"{row.where}: its source {row.source!r} is itself a variant of {source.source!r}")
    unlisted = sorted(set(files) - set(by_file))
    if unlisted:
        problems.append(f"in the zip but not listed in the labels CSV: {', '.join(unlisted[:20])}")
    if problems:
        raise UploadRejected(problems, field="labels")


def zip_upload_read(
    fileobj: IO[bytes],
    *,
    limits: ArchiveLimits,
    labels: bytes | None = None,
    class_resolve: Callable[[str], object] | None = None,
) -> ZipUpload:
    """The images and label rows of an upload: the CSV is `labels` or the one .csv file in the zip."""
    members = archive_members(fileobj, limits=limits)
    csvs = sorted(name for name in members if name.lower().endswith(".csv"))
    if labels is not None and csvs:
        raise UploadRejected([f"labels were sent separately and the zip also holds {csvs[0]!r}; send one"], field="labels")
    if labels is None:
        if len(csvs) != 1:
            found = f"{len(csvs)} ({', '.join(csvs)})" if csvs else "none"
            raise UploadRejected(
                [f"the zip must hold exactly one labels CSV (columns: file, class, condition, source); found {found}"],
                field="labels",
            )
        labels = members.pop(csvs[0])
    rows = labels_parse(labels, max_rows=limits.max_members, class_resolve=class_resolve)
    rows_check(rows, members)
    return ZipUpload(files={row.file: members[row.file] for row in rows}, rows=rows)
