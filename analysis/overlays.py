"""Pictures of maps for people (pure numpy/Pillow/matplotlib): a map blended over its stimulus, and
the map's top regions (as the XRAI study compared them by eye). Display only: maps are divided by
their maximum for colouring; stored maps are never changed."""
from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image
from scipy import ndimage

from .metrics import resize_to, top_region

TOP_OUTER, TOP_INNER = 0.30, 0.10


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    rgb = image.convert("RGB")
    if max(rgb.size) <= max_side:
        return rgb
    ratio = max_side / max(rgb.size)
    return rgb.resize((max(1, round(rgb.width * ratio)), max(1, round(rgb.height * ratio))), Image.BILINEAR)


def _png(array: np.ndarray) -> bytes:
    out = Image.fromarray(np.clip(np.round(array * 255), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return buffer.getvalue()


def overlay_png(image: Image.Image, saliency: np.ndarray | None, *, cmap: str = "jet", max_side: int = 480) -> bytes:
    """PNG of `image` (shrunk to `max_side`) with `saliency` (H x W, any scale, >= 0) blended on
    top; the bare image if None."""
    shown = _fit(image, max_side)
    base = np.asarray(shown, dtype=np.float64) / 255.0
    if saliency is not None:
        m = resize_to(np.asarray(saliency, dtype=np.float64), base.shape[:2])
        top = m.max()
        m = np.clip(m / top, 0, 1) if top > 0 else np.zeros_like(m)
        colour = colormaps[cmap](m)[..., :3]
        alpha = (0.15 + 0.55 * m)[..., None]
        base = (1 - alpha) * base + alpha * colour
    return _png(base)


def _shown_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(shape[::-1], Image.NEAREST)) > 127


def regions_png(image: Image.Image, saliency: np.ndarray | None, *, max_side: int = 480) -> bytes:
    """PNG of the map's top regions on the image: outside the top 30% darkened, the top 30% outlined
    in white and the top 10% in yellow. Regions are taken at stimulus resolution (metrics.top_region,
    ties included), then shown at display size. An all-zero or missing map shows the image dimmed."""
    shown = _fit(image, max_side)
    base = np.asarray(shown, dtype=np.float64) / 255.0
    if saliency is None or not np.any(saliency):
        return _png(base * 0.35)
    m = np.asarray(saliency, dtype=np.float64)
    outer = _shown_mask(top_region(m, TOP_OUTER), base.shape[:2])
    inner = _shown_mask(top_region(m, TOP_INNER), base.shape[:2])
    out = np.where(outer[..., None], base, base * 0.3)
    for mask, colour in ((outer, (1.0, 1.0, 1.0)), (inner, (1.0, 0.85, 0.0))):
        edge = mask & ~ndimage.binary_erosion(mask, iterations=2, border_value=0)
        out[edge] = colour
    return _png(out)
