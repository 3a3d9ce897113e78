"""Validating uploaded stimulus images (pure Pillow, no Django).

An upload is accepted only if Pillow can identify *and* fully decode it, its format is on the
allow-list, and its pixel count is under the limit (decompression bombs are refused before decoding).
"""
import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


class ImageRejected(ValueError):
    """The bytes are not an acceptable stimulus image; the message says why (plain words, no Python
    object reprs: the caller adds the file's name)."""


_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def _plain(exc: Exception) -> str:
    """A decoder's message with any object repr (`<_io.BytesIO object at 0x...>`) said as 'the file'."""
    return _OBJECT_REPR.sub("the file", str(exc))


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str
    sha256: str


def image_inspect(data: bytes, *, max_pixels: int, max_bytes: int) -> ImageInfo:
    """Check `data` is a decodable image within limits; return its format, size, mode and sha256."""
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"the file is {len(data)} bytes; the limit is {max_bytes} bytes")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, (width, height), mode = probe.format, probe.size, probe.mode
            if fmt not in ALLOWED_FORMATS:
                raise ImageRejected(f"format {fmt} is not accepted; use one of {', '.join(ALLOWED_FORMATS)}")
            if width * height > max_pixels:
                raise ImageRejected(
                    f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
                )
            probe.verify()
        with Image.open(io.BytesIO(data)) as full:
            full.load()
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses to even open it (over twice its own limit)
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{pixels.group(1)} pixels" if pixels else f"over {2 * Image.MAX_IMAGE_PIXELS} pixels"
        raise ImageRejected(f"the image is {size} (a decompression bomb); the limit is {max_pixels} pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(
            f"the file is not a readable image (its format is not recognised; use one of {', '.join(ALLOWED_FORMATS)})"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"the file is not a readable image ({exc.__class__.__name__}: {_plain(exc)})") from exc
    if width < 8 or height < 8:
        raise ImageRejected(f"the image is {width}x{height}; each side must be at least 8 pixels")
    return ImageInfo(fmt, width, height, mode, hashlib.sha256(data).hexdigest())


HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def image_rgb(image: Image.Image) -> Image.Image:
    """The 8-bit RGB picture of any Pillow image: 16- and 32-bit grey scaled by the type's range,
    float grey by its maximum when above 1; palette, CMYK, grey and bilevel converted; transparency
    composited over white. The one conversion: renditions of uploads and the model's input use it."""
    if image.mode in HIGH_DEPTH_MODES:
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "F":
            top = max(float(array.max()), 1e-12) if array.max() > 1 else 1.0
        image = Image.fromarray(np.clip(np.round(array / top * 255.0), 0, 255).astype(np.uint8))
    if image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")


def image_rendition(data: bytes) -> Image.Image:
    """The 8-bit RGB picture both participants and models see, from any accepted upload: EXIF
    orientation applied (browsers apply it too), then `image_rgb`."""
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        return image_rgb(ImageOps.exif_transpose(img))
