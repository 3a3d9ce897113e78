"""Building zip uploads for tests, good and hostile."""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
from PIL import Image

from annotations.demo import demo_photo_bytes


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
