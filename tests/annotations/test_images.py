import io

import numpy as np
import pytest
from PIL import Image

from annotations.images import ImageRejected, image_inspect, image_rendition

LIMITS = {"max_pixels": 4096 * 4096, "max_bytes": 10 * 1024 * 1024}


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def test_text_file_is_refused_with_a_reason():
    with pytest.raises(ImageRejected, match="not a readable image"):
        image_inspect(b"hello, I am not an image", **LIMITS)


def test_truncated_png_is_refused():
    data = encode(Image.new("RGB", (64, 64), "red"), "PNG")
    with pytest.raises(ImageRejected):
        image_inspect(data[: len(data) // 2], **LIMITS)


def test_pixel_limit_is_checked_before_decoding():
    data = encode(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(ImageRejected, match="limit is 10000 pixels"):
        image_inspect(data, max_pixels=10_000, max_bytes=10**7)


def test_format_allow_list():
    data = encode(Image.new("RGB", (32, 32)), "PPM")
    with pytest.raises(ImageRejected, match="not accepted"):
        image_inspect(data, **LIMITS)


@pytest.mark.parametrize(
    "mode,fmt",
    [("L", "PNG"), ("CMYK", "JPEG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("I;16", "PNG"), ("1", "PNG"), ("RGB", "WEBP")],
)
def test_every_mode_becomes_8bit_rgb_of_the_same_size(mode, fmt):
    source = Image.new(mode, (40, 30))
    data = encode(source, fmt)
    info = image_inspect(data, **LIMITS)
    assert (info.width, info.height) == (40, 30)
    out = image_rendition(data)
    assert out.mode == "RGB" and out.size == (40, 30)


def test_16bit_grey_keeps_its_contrast():
    ramp = (np.linspace(0, 65535, 64 * 16).reshape(16, 64)).astype(np.uint16)
    data = encode(Image.fromarray(ramp), "PNG")
    out = np.asarray(image_rendition(data))
    assert out[..., 0].min() == 0 and out[..., 0].max() == 255


def test_transparency_is_composited_over_white():
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    out = np.asarray(image_rendition(encode(rgba, "PNG")))
    assert (out == 255).all()
