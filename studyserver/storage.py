"""Reading and writing arrays in Django's default storage as .npy files.

A stored map with NaN or infinite values is refused on reading (ValueError naming the file): every
map the platform writes is finite, so such a file is corrupt or was written by something else.
"""
from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_load(data: bytes, name: str) -> np.ndarray:
    """The array in .npy bytes; refuses pickles and floating arrays holding NaN or infinity."""
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"stored map {name} holds NaN or infinite values")
    return array


def array_save(field: FieldFile, name: str, array: np.ndarray) -> None:
    field.save(name, ContentFile(npy_bytes(array)), save=False)


def array_load(field: FieldFile) -> np.ndarray:
    with field.open("rb") as handle:
        return npy_load(handle.read(), field.name)
