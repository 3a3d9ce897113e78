"""Reading one map file: PNG, JPEG (or another image format), .npy or .mat -> H x W float64.

- Images: grey levels read as stored (EXIF orientation ignored): 8-bit / 255, 16-bit / 65535, bilevel
  0/1, 32-bit integer and float as they are; a palette image through its grey levels; a colour image
  only when its channels are equal (a colour-mapped heat map is refused: its colours are not values).
- .npy: a 2-D numeric array (no pickles).
- .mat (MATLAB v4 to v7, read with scipy.io.loadmat; v7.3/HDF5 files are refused with that reason):
  the variable named by `variable` (e.g. CAT2000's `fixLocs`) if present, else the only 2-D numeric
  variable of the file.
Every value must be finite and non-negative. A binary map (fixated pixels) is the map > 0.5, which
recovers a JPEG-compressed 0/255 map (MIT1003's `_fixPts.jpg`; checked for isolated fixated pixels
at JPEG quality 75 to 100).
"""
from __future__ import annotations

import io

import numpy as np
import scipy.io
from PIL import Image, UnidentifiedImageError

from .files import IMAGE_EXTENSIONS, FileSet, extension
from .imported import ImportedImage, MapSource
from .options import ImportLimits
from .problems import ProblemList

MAP_EXTENSIONS = IMAGE_EXTENSIONS + (".npy", ".mat")
BINARY_THRESHOLD = 0.5


class MapUnreadable(ValueError):
    """The file is not a usable map; the message says why in plain words."""


def _from_image(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise MapUnreadable(f"the map is {img.width}x{img.height} px; the limit is {max_pixels} pixels")
            img.load()
            mode = img.mode
            if mode == "P":
                img, mode = img.convert("RGB"), "RGB"
            if mode in ("RGB", "RGBA", "LA"):
                channels = np.asarray(img, dtype=np.float64)
                colour = channels[..., :3] if mode != "LA" else channels[..., :1]
                if (colour != colour[..., :1]).any():
                    raise MapUnreadable("the map is in colour; give it in grey levels (a colour scale's colours are not values)")
                return colour[..., 0] / 255.0
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, MapUnreadable):
            raise
        raise MapUnreadable(f"the file is not a readable image ({exc.__class__.__name__})") from None
    if mode == "1":
        return arr.astype(np.float64)
    if mode == "L":
        return arr.astype(np.float64) / 255.0
    if mode.startswith("I;16"):
        return arr.astype(np.float64) / 65535.0
    if mode in ("I", "F"):
        return arr.astype(np.float64)
    raise MapUnreadable(f"maps in image mode {mode} are not read; use 8- or 16-bit grey levels")


def _from_npy(data: bytes) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise MapUnreadable(f"the file is not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise MapUnreadable(f"a map is a 2-D numeric array; this one is {getattr(arr, 'shape', '?')} of {getattr(arr, 'dtype', '?')}")
    return arr.astype(np.float64)


def mat_load(data: bytes) -> dict:
    """The variables of a .mat file (scipy.io.loadmat, squeezed, structs as records)."""
    try:
        return scipy.io.loadmat(io.BytesIO(data), squeeze_me=True, struct_as_record=True)
    except NotImplementedError:
        raise MapUnreadable("MATLAB v7.3 (HDF5) files are not read; save it with save(..., '-v7')") from None
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError, AttributeError) as exc:
        raise MapUnreadable(f"the file is not a readable .mat file ({exc.__class__.__name__})") from None


def _from_mat(data: bytes, variable: str | None) -> np.ndarray:
    variables = {k: v for k, v in mat_load(data).items() if not k.startswith("__")}
    if variable and variable in variables:
        chosen = variables[variable]
    else:
        maps = {k: v for k, v in variables.items()
                if isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind in "biuf"}
        if len(maps) != 1:
            found = ", ".join(sorted(variables)) or "none"
            raise MapUnreadable(f"the .mat file must hold one 2-D numeric variable{f' (or {variable!r})' if variable else ''}; "
                                f"its variables: {found}")
        chosen = next(iter(maps.values()))
    if not isinstance(chosen, np.ndarray) or chosen.ndim != 2 or chosen.dtype.kind not in "biuf":
        raise MapUnreadable(f"{variable!r} is not a 2-D numeric array")
    return chosen.astype(np.float64)


def map_load(files: FileSet, name: str, limits: ImportLimits, *, variable: str | None = None) -> np.ndarray:
    """H x W float64, finite, non-negative; raises MapUnreadable."""
    if files.size(name) > limits.max_map_bytes:
        raise MapUnreadable(f"the file is {files.size(name)} bytes; the limit is {limits.max_map_bytes}")
    data = files.read(name)
    ext = extension(name)
    if ext == ".npy":
        arr = _from_npy(data)
    elif ext == ".mat":
        arr = _from_mat(data, variable)
    else:
        arr = _from_image(data, limits.max_image_pixels)
    if arr.size > limits.max_image_pixels:
        raise MapUnreadable(f"the map is {arr.shape[1]}x{arr.shape[0]}; the limit is {limits.max_image_pixels} pixels")
    if not np.isfinite(arr).all():
        raise MapUnreadable("the map holds a value that is not a finite number (NaN or infinity)")
    if (arr < 0).any():
        raise MapUnreadable("the map holds negative values; human maps are non-negative")
    return arr


def size_problem(arr: np.ndarray, width: int, height: int, image_name: str) -> str | None:
    if arr.shape != (height, width):
        return (f"the map is {arr.shape[1]}x{arr.shape[0]} px (width x height); its image {image_name} is "
                f"{width}x{height}")
    return None


def prepared(arr: np.ndarray, role: str, normalise: str = "sum") -> np.ndarray:
    """What a map of this role holds once read: "density": float64 summing to 1; "participant":
    float64, summing to 1 (normalise="sum"; an all-zero map stays zero) or as given ("none");
    "binary": bool, the fixated pixels."""
    if role == "binary":
        return arr > BINARY_THRESHOLD
    total = float(arr.sum())
    if role == "density" or normalise == "sum":
        return arr / total if total > 0 else arr
    return arr


def map_source(files: FileSet, name: str, limits: ImportLimits, image: ImportedImage, role: str,
               problems: ProblemList, *, normalise: str = "sum", variable: str | None = None) -> MapSource | None:
    """A checked MapSource of `image` (None, and a problem, when the file is unusable)."""
    try:
        arr = map_load(files, name, limits, variable=variable)
    except MapUnreadable as exc:
        problems.add(name, None, variable, str(exc))
        return None
    if problem := size_problem(arr, image.width, image.height, image.name):
        problems.add(name, None, None, problem)
        return None
    if role == "density" and not arr.any():
        problems.add(name, None, None, "the density map is zero everywhere")
        return None
    if role == "binary" and not prepared(arr, role).any():
        problems.add(name, None, None, f"no pixel of the fixation map is above {BINARY_THRESHOLD} (nothing fixated)")
        return None
    return MapSource(file=name, load=lambda: prepared(map_load(files, name, limits, variable=variable), role, normalise))
