"""The files of one import, whatever they came in: a folder, a zip, one file, or uploaded files.

Names are relative paths with '/' separators. Zips (a .zip path, or a .zip among uploaded files) are
read under the stimulus-upload rules (`annotations.uploads.archive_members`: no absolute or '..'
names, no links or devices, no encrypted members, bounded member count, sizes and compression
ratios, checked before anything is decompressed); their members are held in memory. Folders are
walked without following links; a link inside is refused. Desktop clutter (`__MACOSX/`,
`.DS_Store`, `Thumbs.db`, `._*`) is skipped everywhere.
"""
from __future__ import annotations

import io
import os
import posixpath
import stat
from pathlib import Path
from typing import IO, Callable, Mapping

from annotations.uploads import SKIPPED_NAMES, UploadRejected, archive_members, member_name_problem

from .options import ImportLimits
from .problems import ProblemList

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def skipped(name: str) -> bool:
    base = posixpath.basename(name)
    return name.startswith("__MACOSX/") or "/__MACOSX/" in name or base in SKIPPED_NAMES or base.startswith("._")


def extension(name: str) -> str:
    return posixpath.splitext(name)[1].lower()


class FileSet:
    """name -> an opener of the file's bytes (a stream: a big CSV on disk is never read whole)."""

    def __init__(self, openers: dict[str, Callable[[], IO[bytes]]], sizes: dict[str, int]):
        self._openers = openers
        self._sizes = sizes

    @property
    def names(self) -> list[str]:
        return sorted(self._openers)

    def size(self, name: str) -> int:
        return self._sizes[name]

    def open(self, name: str) -> IO[bytes]:
        return self._openers[name]()

    def read(self, name: str) -> bytes:
        with self.open(name) as handle:
            return handle.read()

    def reader(self, name: str) -> Callable[[], bytes]:
        """A function returning the file's bytes (read again at each call for files on disk)."""
        return lambda: self.read(name)


def _memory(files: Mapping[str, bytes]) -> FileSet:
    return FileSet({n: (lambda d=d: io.BytesIO(d)) for n, d in files.items()}, {n: len(d) for n, d in files.items()})


def _zip(handle: IO[bytes], label: str, limits: ImportLimits, problems: ProblemList) -> dict[str, bytes]:
    try:
        members = archive_members(handle, limits=limits.archive)
    except UploadRejected as exc:
        for line in exc.problems:
            problems.add(label, None, None, line)
        return {}
    return {name: data for name, data in members.items() if not skipped(name)}


def _folder(root: Path, limits: ImportLimits, problems: ProblemList) -> FileSet:
    openers, sizes = {}, {}
    for directory, subdirs, files in os.walk(root, followlinks=False):
        subdirs.sort()
        for entry in sorted(subdirs + files):
            path = Path(directory) / entry
            name = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                problems.add(name, None, None, "is a symbolic link; only regular files are read")
                if entry in subdirs:
                    subdirs.remove(entry)
                continue
            if entry in subdirs or skipped(name):
                continue
            if not stat.S_ISREG(info.st_mode):
                problems.add(name, None, None, "is not a regular file")
                continue
            if len(openers) >= limits.max_files:
                problems.add(None, None, None, f"the folder holds more than {limits.max_files} files; that is the limit")
                return FileSet(openers, sizes)
            openers[name] = lambda p=path: open(p, "rb")
            sizes[name] = info.st_size
    return FileSet(openers, sizes)


def fileset_open(source, limits: ImportLimits, problems: ProblemList) -> FileSet:
    """The import's files. `source`: a folder, a .zip or any one file (str or Path); or a mapping of
    uploaded file names to bytes (a .zip among them is expanded into its members, by their paths)."""
    if isinstance(source, Mapping):
        files: dict[str, bytes] = {}
        for name, data in source.items():
            normal = str(name).replace("\\", "/").removeprefix("./")
            if unsafe := member_name_problem(normal):
                problems.add(str(name), None, None, f"the file name has {unsafe}")
            elif extension(normal) == ".zip":
                files.update(_zip(io.BytesIO(data), normal, limits, problems))
            elif not skipped(normal):
                files[normal] = bytes(data)
        return _memory(files)
    path = Path(source)
    if not path.exists():
        problems.add(str(source), None, None, "does not exist")
        return _memory({})
    if path.is_dir():
        return _folder(path, limits, problems)
    if extension(path.name) == ".zip":
        with open(path, "rb") as handle:
            return _memory(_zip(handle, path.name, limits, problems))
    return FileSet({path.name: lambda: open(path, "rb")}, {path.name: path.stat().st_size})


def role_split(name: str, roles: dict[str, str]) -> tuple[str, list[str]] | None:
    """(role, the path's parts below the folder) for the first folder of `name` whose lower-cased
    name is a key of `roles` (folder name -> role); None when no folder of the path has a role."""
    parts = name.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() in roles:
            return roles[part.lower()], parts[i + 1:]
    return None


def key_of(parts: list[str]) -> str:
    """The data key of a file below a role folder: its path there, without the extension."""
    return posixpath.splitext("/".join(parts))[0]


def ignored_note(names: list[str], why: str) -> str | None:
    if not names:
        return None
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"{len(names)} file{'s' if len(names) != 1 else ''} not read ({why}): {shown}"
