"""Every kind of image a researcher uploads reaches the model as the participants' 8-bit RGB."""
import io

import numpy as np
import pytest
from PIL import Image

from annotations.images import image_rendition, image_rgb
from explain.methods import UnknownMethod
from explain.pipeline import InvalidTarget, explain_image
from explain.zoo import UnknownModel, model_load
from studyserver.researcher.demo import demo_photo


def photo_in_mode(mode: str) -> Image.Image:
    rgb = demo_photo("chelsea.png").convert("RGB")
    grey = np.asarray(rgb.convert("L"), dtype=np.uint16)
    if mode == "I;16":
        return Image.fromarray((grey * 257).astype(np.uint16))  # full 16-bit range
    if mode == "I":
        return Image.fromarray(grey.astype(np.int32) * 257)
    if mode in ("RGBA", "LA"):
        image = rgb.convert(mode)
        alpha = np.full((rgb.height, rgb.width), 255, np.uint8)
        alpha[:, :60] = 0  # a transparent strip on the left
        image.putalpha(Image.fromarray(alpha))
        return image
    if mode == "P":
        return rgb.quantize(64)
    return rgb.convert(mode)


MODES = ["L", "CMYK", "P", "RGBA", "LA", "I;16", "I", "1"]


def tiff_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF")
    return buffer.getvalue()


@pytest.mark.parametrize("mode", MODES)
def test_image_rgb_follows_the_participants_rendition(mode):
    image = photo_in_mode(mode)
    assert image.mode == mode
    ours = np.asarray(image_rgb(image))
    assert ours.dtype == np.uint8 and ours.shape == (300, 451, 3)
    assert np.array_equal(ours, np.asarray(image_rendition(tiff_bytes(image))))


def test_sixteen_bit_grey_is_scaled_not_clipped():
    rgb = np.asarray(image_rgb(photo_in_mode("I;16")))
    grey = np.asarray(demo_photo("chelsea.png").convert("L"))
    assert np.abs(rgb[..., 0].astype(int) - grey).max() <= 1


def test_alpha_is_composited_over_white():
    assert (np.asarray(image_rgb(photo_in_mode("RGBA")))[:, :60] == 255).all()


@pytest.fixture(scope="module")
def lite0():
    return model_load("efficientnet_lite0")


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_is_explained_at_its_own_resolution(lite0, mode):
    e = explain_image(lite0, photo_in_mode(mode), "gradient")
    assert e.raw.shape == (300, 451) and np.isfinite(e.raw).all() and e.comparison.max() > 0
    if mode in ("CMYK", "P", "RGBA"):
        assert e.predicted == 285  # still the cat in colour


def test_bad_requests_are_refused_with_the_valid_choices(lite0):
    image = demo_photo("chelsea.png")
    with pytest.raises(InvalidTarget, match=r"target class 1000 is outside the model's classes 0\.\.999"):
        explain_image(lite0, image, "gradient", target=1000)
    with pytest.raises(InvalidTarget, match="outside"):
        explain_image(lite0, image, "gradient", target=-1)
    with pytest.raises(UnknownMethod, match="valid methods: .*guided_backprop.*integrated_gradients.*smoothgrad"):
        explain_image(lite0, image, "saliency")
    with pytest.raises(UnknownModel, match="valid models: .*efficientnet_lite0"):
        model_load("efficientnet_b7")
