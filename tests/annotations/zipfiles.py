"""Building zip uploads for tests, good and hostile."""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
from PIL import Image

from studyserver.researcher.demo import demo_photo_bytes


def png(width=64, height=48, seed=0, mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def pixel_bomb_png(side=5000) -> bytes:
    """A tiny file that decodes to side x side pixels (1-bit, all black)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def make_zip(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None, deflate=True) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            info.external_attr = (0o100644 << 16)
            info.create_system = 3
            archive.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, target)
    return buffer.getvalue()


def csv_bytes(*rows: str, header="file,class,condition,source") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def photo_zip(extra_rows=(), extra_members=None, header="file,class,condition,source") -> bytes:
    """chelsea (285) and coffee (967) in images/, labelled by labels.csv."""
    members = {
        "images/chelsea.png": demo_photo_bytes("chelsea.png"),
        "images/coffee.png": demo_photo_bytes("coffee.png"),
        **(extra_members or {}),
    }
    rows = ["images/chelsea.png,285,original,", "images/coffee.png,espresso,original,", *extra_rows]
    members["labels.csv"] = csv_bytes(*rows, header=header)
    return make_zip(members)


def lie_about_size(data: bytes, member: str, declared: int) -> bytes:
    """The zip with `member`'s uncompressed size rewritten to `declared` in both headers."""
    out = bytearray(data)
    name = member.encode()
    local = out.find(b"PK\x03\x04" + b"")
    while local != -1:
        name_len = struct.unpack_from("<H", out, local + 26)[0]
        if bytes(out[local + 30 : local + 30 + name_len]) == name:
            struct.pack_into("<I", out, local + 22, declared)
        local = out.find(b"PK\x03\x04", local + 4)
    central = out.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", out, central + 28)[0]
        if bytes(out[central + 46 : central + 46 + name_len]) == name:
            struct.pack_into("<I", out, central + 24, declared)
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


# --- zips as common tools write them ---------------------------------------------------------------

APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 60  # a `._name` resource fork header


class _Unseekable(io.RawIOBase):
    """A write-only stream without seek, as ditto's pipe: zipfile then writes data descriptors."""

    def __init__(self):
        self.buffer = io.BytesIO()

    def writable(self):
        return True

    def write(self, data):
        return self.buffer.write(data)


def writestr_zip(members: dict[str, bytes]) -> bytes:
    """As `zipfile.ZipFile.writestr(name, data)` writes it: permissions 0o600, no file-type bits."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _folders(names) -> list[str]:
    """Every folder holding one of `names`, parents first, each ending in '/'."""
    return sorted({name[: i + 1] for name in names for i, char in enumerate(name) if char == "/"})


def _entry(name: str, *, system: int, attributes: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 5, 17, 9, 30, 0))
    info.create_system, info.external_attr = system, attributes
    info.create_version = 20 if system == 0 else 30
    info.compress_type = zipfile.ZIP_STORED if name.endswith("/") else zipfile.ZIP_DEFLATED
    return info


def tool_zip(members: dict[str, bytes], *, tool: str) -> bytes:
    """The zip a desktop tool makes of these files (folders included):

    * "info-zip": the `zip` command on Unix: create_system 3 (Unix), mode 0o100644 for files and
      0o40755 with the MS-DOS directory bit for folders;
    * "finder": macOS Finder's "Compress" (Archive Utility): Unix attributes as Info-ZIP, data
      descriptors after each member, a `.DS_Store` in each folder and `__MACOSX/` AppleDouble
      `._name` members beside the files;
    * "explorer": Windows "Send to > Compressed folder": create_system 0 (MS-DOS) with only the
      MS-DOS attributes (0x20 archive for files, 0x10 for folders), no Unix mode.
    """
    entries: list[tuple[zipfile.ZipInfo, bytes]] = []
    unix, dos = {"info-zip": True, "finder": True, "explorer": False}[tool], tool == "explorer"
    names = list(members)
    if tool == "finder":
        names += [".DS_Store", *(f"{folder}.DS_Store" for folder in _folders(members))]
        members = {**members, **{name: b"Bud1" + b"\x00" * 60 for name in names if name.endswith(".DS_Store")}}
    for name in _folders(names) + names:
        folder = name.endswith("/")
        if unix:
            attributes = ((0o40755 if folder else 0o100644) << 16) | (0x10 if folder else 0)
        else:
            attributes = 0x10 if folder else 0x20
        entries.append((_entry(name, system=0 if dos else 3, attributes=attributes), b"" if folder else members[name]))
    if tool == "finder":
        forks = [f"__MACOSX/{'/'.join(n.split('/')[:-1] + ['._' + n.split('/')[-1]])}" for n in members if "DS_Store" not in n]
        for name in _folders(forks) + forks:
            folder = name.endswith("/")
            attributes = ((0o40755 if folder else 0o100644) << 16) | (0x10 if folder else 0)
            entries.append((_entry(name, system=3, attributes=attributes), b"" if folder else APPLEDOUBLE))
    stream = _Unseekable() if tool == "finder" else io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return stream.buffer.getvalue() if tool == "finder" else stream.getvalue()
