"""The built-in practice image, used when a study has no practice-role stimulus (pure numpy + Pillow).

A small drawn scene (a yellow ball on a lawn under the sky), deterministic, so nothing is downloaded and
its object's region is known exactly: the instructions' example marks it, and the practice trial can
be checked against it. 8-bit RGB PNG, PRACTICE_WIDTH x PRACTICE_HEIGHT stimulus pixels.
"""
from __future__ import annotations

import functools
import io
import math

import numpy as np
from PIL import Image

PRACTICE_WIDTH, PRACTICE_HEIGHT = 480, 360
PRACTICE_LABEL = "ball"
BALL_CENTRE, BALL_RADIUS = (300.0, 215.0), 70.0


def practice_region() -> dict:
    """The ball as a 48-gon in stimulus px (the format of annotations.regions)."""
    cx, cy = BALL_CENTRE
    return {
        "boxes": [],
        "polygons": [[[round(cx + BALL_RADIUS * math.cos(a), 2), round(cy + BALL_RADIUS * math.sin(a), 2)]
                      for a in np.linspace(0, 2 * math.pi, 48, endpoint=False)]],
    }


def _scene() -> np.ndarray:
    h, w = PRACTICE_HEIGHT, PRACTICE_WIDTH
    y, x = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    rng = np.random.default_rng(7)
    # sky: a vertical gradient; lawn: green with texture below a gently curved horizon
    sky = np.stack([150 + 60 * y / h, 190 + 40 * y / h, np.full_like(y, 245.0)], axis=-1)
    horizon = 180 + 12 * np.sin(x / 70.0)
    grass_noise = rng.normal(0, 10, (h, w))
    lawn = np.stack([70 + grass_noise, 140 + 0.25 * (y - 180) + grass_noise, 60 + grass_noise / 2], axis=-1)
    image = np.where((y > horizon)[..., None], lawn, sky)
    # a tree on the left: trunk and crown
    trunk = (np.abs(x - 95) < 9) & (y > 110) & (y < 215)
    image[trunk] = [110, 80, 50]
    crown = (x - 95) ** 2 / 55**2 + (y - 100) ** 2 / 60**2 < 1
    image[crown] = np.stack([40 + grass_noise[crown], 110 + grass_noise[crown], 45 + grass_noise[crown]], axis=-1)
    # the ball's shadow, then the ball with a light from the upper left
    cx, cy = BALL_CENTRE
    shadow = ((x - cx - 18) / 80) ** 2 + ((y - cy - 62) / 18) ** 2 < 1
    image[shadow] *= 0.6
    d = np.hypot(x - cx, y - cy)
    ball = d < BALL_RADIUS
    light = np.clip(1.15 - np.hypot(x - (cx - 25), y - (cy - 25)) / (1.6 * BALL_RADIUS), 0.25, 1.0)
    image[ball] = np.stack([250 * light[ball], 205 * light[ball], 40 * light[ball]], axis=-1)
    stripe = ball & (np.abs((y - cy) + 0.35 * (x - cx)) < 11)
    image[stripe] = np.stack([40 * light[stripe], 90 * light[stripe], 220 * light[stripe]], axis=-1)
    return np.clip(image, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def practice_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_scene()).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
