"""Common corruptions in the style of ImageNet-C (Hendrycks & Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019), pure numpy/scipy/Pillow/scikit-image.

`corrupt(image, name, severity, seed)` takes an H x W x 3 uint8 RGB array and returns an H x W x 3
uint8 array of the same size. Invariants:

* Deterministic: the same (pixels, name, severity, seed) give the same bytes (for the pinned numpy,
  scipy, scikit-image and Pillow). All randomness comes from `numpy.random.default_rng(seed)`.
* Severities 1..5 use the paper's parameter tables (`hendrycks/robustness`, `make_imagenet_c.py`),
  listed in `CORRUPTIONS[name].table`.
* The paper works on 224 x 224 crops. Parameters that are distances in pixels (blur sigmas and radii,
  glass blur's shuffle distance, motion blur's length, pixelate's block size) are multiplied by
  `scale = min(H, W) / 224`, so a stimulus corrupts as if its short side were ImageNet-C's 224 px;
  at 224 px the formulas are the paper's exactly. Per-pixel corruptions (the noises, JPEG's 8 px
  blocks) are applied to every stimulus pixel unscaled: a model that shrinks a large stimulus to
  224 px averages part of them away (resize large photos before uploading to avoid that).
* Float results are clipped to [0, 255] and truncated to uint8, as ImageNet-C's `np.uint8(...)`.
  ImageNet-C then stored JPEG quality 85 files; the platform stores lossless PNG instead, so a
  variant differs from its source only by the corruption.
* Motion blur follows `imagecorruptions` (Michaelis et al. 2019)'s numpy port of ImageMagick's
  motion blur (one-sided Gaussian-weighted line, angle uniform in [-45, 45] degrees).
"""
from __future__ import annotations

import io
import math
from array import array
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image
from scipy.ndimage import zoom as nd_zoom
from scipy.signal import fftconvolve
from skimage.color import hsv2rgb, rgb2hsv
from skimage.filters import gaussian
from skimage.util import random_noise

REFERENCE_SIZE = 224
SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Corruption:
    name: str
    family: str  # noise, blur, digital, weather
    params: tuple[str, ...]  # the names of one severity's parameters
    table: tuple[tuple, ...]  # severity 1..5 -> the paper's parameters
    scaled: tuple[str, ...]  # parameters adapted to the image size (pixel distances times min(H, W) / 224)
    apply: Callable[[np.ndarray, tuple, float, np.random.Generator], np.ndarray]
    description: str


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


def _gaussian_blur_rgb(x: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian(x, sigma=sigma, channel_axis=-1)


def _correlate_mirror(channel: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """OpenCV `filter2D` with its default BORDER_REFLECT_101 border, through an FFT (symmetric kernels)."""
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(channel, ((ry, ry), (rx, rx)), mode="reflect")
    return fftconvolve(padded, kernel[::-1, ::-1], mode="valid")


def _gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """OpenCV's `getGaussianKernel(size, sigma)` for sigma > 0."""
    x = np.arange(size) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """ImageNet-C's anti-aliased disk: a binary disk of `radius` px, normalised, then blurred by a
    3 x 3 (radius <= 8) or 5 x 5 Gaussian of sigma `alias_blur` (OpenCV GaussianBlur, reflect-101)."""
    half = 8 if radius <= 8 else int(math.ceil(radius))
    size = 3 if radius <= 8 else 5
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = _gaussian_kernel_1d(size, alias_blur)
    out = _correlate_mirror(disk, g[None, :])
    return _correlate_mirror(out, g[:, None])


def _gaussian_noise(x, c, scale, rng):
    (sd,) = c
    x = _to_float(x)
    return np.clip(x + rng.normal(size=x.shape, scale=sd), 0, 1) * 255


def _shot_noise(x, c, scale, rng):
    (lam,) = c
    x = _to_float(x)
    return np.clip(rng.poisson(x * lam) / lam, 0, 1) * 255


def _impulse_noise(x, c, scale, rng):
    (amount,) = c
    return np.clip(random_noise(_to_float(x), mode="s&p", amount=amount, rng=rng), 0, 1) * 255


def _speckle_noise(x, c, scale, rng):
    (sd,) = c
    x = _to_float(x)
    return np.clip(x + x * rng.normal(size=x.shape, scale=sd), 0, 1) * 255


def _gaussian_blur(x, c, scale, rng):
    (sigma,) = c
    return np.clip(_gaussian_blur_rgb(_to_float(x), sigma * scale), 0, 1) * 255


def glass_shuffle_sources(height: int, width: int, delta: int, iterations: int, rng) -> np.ndarray:
    """Flat indices p with out.flat[i] = in.flat[p[i]]: ImageNet-C's local pixel shuffle.

    Per iteration, the offsets of every visited pixel are drawn at once,
    `rng.integers(-delta, delta, size=(rows, cols, 2))` as (dx, dy), uniform in [-delta, delta) like
    the paper's `randint(-delta, delta)`. Rows h = H-delta .. delta+1 and columns
    w = W-delta .. delta+1 are visited in descending order. The paper's code writes
    `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on a numpy array; because `x[h, w]` is a view, that
    copies the neighbour into (h, w) and leaves the neighbour unchanged (it does not swap). The
    published ImageNet-C images were made that way, and so are these: sequential copies, run as a
    plain loop over a compact int array.
    """
    source = array("q", range(height * width))
    rows = np.arange(height - delta, delta, -1, dtype=np.int64)
    cols = np.arange(width - delta, delta, -1, dtype=np.int64)
    for _ in range(iterations):
        offsets = rng.integers(-delta, delta, size=(rows.size, cols.size, 2), dtype=np.int16)
        for i, h in enumerate(rows.tolist()):
            dx, dy = offsets[i, :, 0].astype(np.int64), offsets[i, :, 1].astype(np.int64)
            here = (h * width + cols).tolist()
            there = ((h + dy) * width + cols + dx).tolist()
            for a, b in zip(here, there):
                source[a] = source[b]
    return np.frombuffer(source, dtype=np.int64)


def _glass_blur(x, c, scale, rng):
    sigma, delta, iterations = c
    sigma, delta = sigma * scale, max(1, round(delta * scale))
    height, width = x.shape[:2]
    blurred = np.uint8(_gaussian_blur_rgb(_to_float(x), sigma) * 255)
    sources = glass_shuffle_sources(height, width, delta, iterations, rng)
    shuffled = blurred.reshape(-1, 3)[sources].reshape(blurred.shape)
    return np.clip(_gaussian_blur_rgb(shuffled / 255.0, sigma), 0, 1) * 255


def _defocus_blur(x, c, scale, rng):
    radius, alias_blur = c
    kernel = disk_kernel(radius * scale, alias_blur)
    x = _to_float(x)
    channels = [_correlate_mirror(x[:, :, d], kernel) for d in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 1) * 255


def _motion_blur(x, c, scale, rng):
    radius, sigma = c
    radius, sigma = max(1, round(radius * scale)), sigma * scale
    angle = rng.uniform(-45, 45)
    width = 2 * radius + 1
    kernel = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    height, w = x.shape[:2]
    # Sample i reads image[clamp(y - dy), clamp(x - dx)] (edges repeated, as imagecorruptions' `shift`).
    padded = np.pad(x.astype(np.float64), ((width, width), (width, width), (0, 0)), mode="edge")
    out = np.zeros(x.shape, dtype=np.float64)
    for i in range(width):
        dy, dx = -math.ceil(i * sin - 0.5), -math.ceil(i * cos - 0.5)
        if abs(dy) >= height or abs(dx) >= w:
            break
        out += kernel[i] * padded[width - dy : width - dy + height, width - dx : width - dx + w]
    return np.clip(out, 0, 255)


def _clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    height, width = image.shape[:2]
    ch, cw = int(math.ceil(height / factor)), int(math.ceil(width / factor))
    top, left = (height - ch) // 2, (width - cw) // 2
    zoomed = nd_zoom(image[top : top + ch, left : left + cw], (factor, factor, 1), order=1)
    trim_top, trim_left = (zoomed.shape[0] - height) // 2, (zoomed.shape[1] - width) // 2
    return zoomed[trim_top : trim_top + height, trim_left : trim_left + width]


def _zoom_blur(x, c, scale, rng):
    start, stop, step = c
    factors = np.arange(start, stop, step)
    x = _to_float(x).astype(np.float32)
    out = np.zeros_like(x)
    for factor in factors:
        out += _clipped_zoom(x, factor)
    return np.clip((x + out) / (len(factors) + 1), 0, 1) * 255


def _contrast(x, c, scale, rng):
    (factor,) = c
    x = _to_float(x)
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * factor + means, 0, 1) * 255


def _brightness(x, c, scale, rng):
    (shift,) = c
    hsv = rgb2hsv(_to_float(x))
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + shift, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def _saturate(x, c, scale, rng):
    factor, shift = c
    hsv = rgb2hsv(_to_float(x))
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * factor + shift, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def _jpeg_compression(x, c, scale, rng):
    (quality,) = c
    buffer = io.BytesIO()
    Image.fromarray(x).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _pixelate(x, c, scale, rng):
    """Down with a box filter so the short side has 224 * c pixels (ImageNet-C's block size), back up."""
    (factor,) = c
    height, width = x.shape[:2]
    small = (max(1, int(width * factor / scale)), max(1, int(height * factor / scale)))
    image = Image.fromarray(x).resize(small, Image.Resampling.BOX)
    return np.asarray(image.resize((width, height), Image.Resampling.BOX))


def _entry(name, family, params, table, scaled, apply, description) -> Corruption:
    return Corruption(name, family, params, tuple(table), scaled, apply, description)


CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        _entry("gaussian_noise", "noise", ("sd",), [(0.08,), (0.12,), (0.18,), (0.26,), (0.38,)], (), _gaussian_noise,
               "additive Gaussian noise of standard deviation sd (image in [0, 1])"),
        _entry("shot_noise", "noise", ("photons",), [(60,), (25,), (12,), (5,), (3,)], (), _shot_noise,
               "Poisson noise: poisson(x * photons) / photons"),
        _entry("impulse_noise", "noise", ("amount",), [(0.03,), (0.06,), (0.09,), (0.17,), (0.27,)], (), _impulse_noise,
               "salt-and-pepper noise on this fraction of values"),
        _entry("speckle_noise", "noise", ("sd",), [(0.15,), (0.2,), (0.35,), (0.45,), (0.6,)], (), _speckle_noise,
               "multiplicative Gaussian noise: x + x * normal(0, sd)"),
        _entry("gaussian_blur", "blur", ("sigma",), [(1,), (2,), (3,), (4,), (6,)], ("sigma",), _gaussian_blur,
               "Gaussian blur of sigma px"),
        _entry("glass_blur", "blur", ("sigma", "max_delta", "iterations"),
               [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)], ("sigma", "max_delta"), _glass_blur,
               "Gaussian blur, local pixel shuffle within max_delta px (iterations times), Gaussian blur"),
        _entry("defocus_blur", "blur", ("radius", "alias_blur"),
               [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)], ("radius",), _defocus_blur,
               "convolution with an anti-aliased disk of radius px"),
        _entry("motion_blur", "blur", ("radius", "sigma"),
               [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)], ("radius", "sigma"), _motion_blur,
               "one-sided Gaussian-weighted line blur of radius px at a random angle in [-45, 45] degrees"),
        _entry("zoom_blur", "blur", ("start", "stop", "step"),
               [(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)], (), _zoom_blur,
               "mean of the image and centre zooms by factors arange(start, stop, step)"),
        _entry("brightness", "weather", ("shift",), [(0.1,), (0.2,), (0.3,), (0.4,), (0.5,)], (), _brightness,
               "HSV value + shift"),
        _entry("contrast", "digital", ("factor",), [(0.4,), (0.3,), (0.2,), (0.1,), (0.05,)], (), _contrast,
               "(x - channel mean) * factor + channel mean"),
        _entry("saturate", "digital", ("factor", "shift"),
               [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)], (), _saturate,
               "HSV saturation * factor + shift"),
        _entry("jpeg_compression", "digital", ("quality",), [(25,), (18,), (15,), (10,), (7,)], (), _jpeg_compression,
               "JPEG at this quality (Pillow's libjpeg), decoded"),
        _entry("pixelate", "digital", ("factor",), [(0.6,), (0.5,), (0.4,), (0.3,), (0.25,)], ("factor",), _pixelate,
               "box-filter down to a short side of 224 * factor px, box-filter back up"),
    )
}


class UnknownCorruption(ValueError):
    """The name or severity is not known; the message lists the valid ones."""


# The messages for an unknown name or severity, `str.format`ted with input=<the value given> (also
# the API's and forms' choice errors, so every caller says the same).
UNKNOWN_NAME = "unknown corruption {input!r}; valid: " + ", ".join(CORRUPTIONS)
UNKNOWN_SEVERITY = "severity must be one of " + ", ".join(map(str, SEVERITIES)) + "; got {input!r}"


def _severity_known(severity) -> bool:
    return not isinstance(severity, bool) and severity in SEVERITIES


def corruption_get(name: str, severity: int) -> Corruption:
    corruption = CORRUPTIONS.get(name)
    if corruption is None:
        raise UnknownCorruption(UNKNOWN_NAME.format(input=name))
    if not _severity_known(severity):
        raise UnknownCorruption(UNKNOWN_SEVERITY.format(input=severity))
    return corruption


def corruption_request_problems(corruptions: list, severities: list) -> dict[str, list[str]]:
    """What is wrong with a request for corruptions x severities, flat per field, each problem naming
    its index: {"corruptions": ["corruptions[1]: unknown corruption 'fog'; valid: ..."]}. Empty: fine."""
    problems: dict[str, list[str]] = {}
    if not corruptions:
        problems["corruptions"] = ["give at least one corruption"]
    if not severities:
        problems["severities"] = ["give at least one severity"]
    for i, name in enumerate(corruptions):
        if not isinstance(name, str) or name not in CORRUPTIONS:
            problems.setdefault("corruptions", []).append(f"corruptions[{i}]: " + UNKNOWN_NAME.format(input=name))
    for i, severity in enumerate(severities):
        if not _severity_known(severity):
            problems.setdefault("severities", []).append(f"severities[{i}]: " + UNKNOWN_SEVERITY.format(input=severity))
    return problems


def image_scale(height: int, width: int) -> float:
    """How many stimulus pixels one ImageNet-C pixel spans: min(H, W) / 224."""
    return min(height, width) / REFERENCE_SIZE


def corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """`image` (H x W x 3 uint8 RGB) corrupted by `name` at `severity` (1..5): H x W x 3 uint8."""
    corruption = corruption_get(name, severity)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 RGB array, got {image.dtype} {image.shape}")
    rng = np.random.default_rng(seed)
    scale = image_scale(*image.shape[:2])
    out = corruption.apply(image, corruption.table[severity - 1], scale, rng)
    out = np.uint8(np.clip(out, 0, 255))
    assert out.shape == image.shape, (out.shape, image.shape)
    return out


def corrupt_png(image: np.ndarray, name: str, severity: int, seed: int) -> bytes:
    """`corrupt` encoded as an 8-bit RGB PNG (deterministic bytes for deterministic pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(corrupt(image, name, severity, seed)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
