"""Participant flows shared by the browser tests: practice per task kind, catch stimuli, pixels."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from annotations.practice import BALL_CENTRE, PRACTICE_HEIGHT, PRACTICE_WIDTH
from studyserver.researcher.services import studies
from tests.conftest import png_bytes
from tests.e2e.browser import image_ready, paint_rectangle, reveal, shot

CATCH_LABEL = "orange"  # ImageNet 950
CATCH_BOX = [40, 60, 200, 220]  # stimulus px of the 320 x 240 catch image


def catch_image() -> bytes:
    """A 320 x 240 catch image: an orange disc in CATCH_BOX on a grey, textured background."""
    rng = np.random.default_rng(3)
    image = np.clip(rng.normal(120, 12, (240, 320, 3)), 0, 255)
    y, x = np.mgrid[0:240, 0:320] + 0.5
    disc = (x - 120) ** 2 + (y - 140) ** 2 < 78**2
    image[disc] = [245, 140, 20]
    return png_bytes(image.astype(np.uint8))


def catch_add(study) -> None:
    studies.stimulus_create(study=study, data=catch_image(), filename="catch.png", class_index=950, role="catch",
                            known_region={"boxes": [CATCH_BOX]})


def ball_fraction() -> tuple[float, float]:
    return BALL_CENTRE[0] / PRACTICE_WIDTH, BALL_CENTRE[1] / PRACTICE_HEIGHT


def click_at(page, box, fx, fy):
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def practice(page, kind: str, name: str, *, mouse_ms: int = 1600) -> None:
    """Instructions -> the practice trial done right -> 'Start the study'."""
    page.wait_for_selector("#instructions:not([hidden])")
    page.wait_for_function("document.querySelector('#example-stage canvas, #example-stage img') !== null")
    page.wait_for_timeout(300)
    shot(page, f"{name}-2-instructions")
    page.click("#start")
    bx, by = ball_fraction()
    if kind == "paint":
        box = image_ready(page)
        paint_rectangle(page, box, bx - 0.12, by - 0.15, bx + 0.12, by + 0.15, step=10)
        shot(page, f"{name}-3-practice")
        page.click("#submit")
    elif kind == "bubble":
        image_ready(page)
        box = reveal(page)
        click_at(page, box, bx, by)
        click_at(page, box, bx + 0.05, by)
        shot(page, f"{name}-3-practice")
        if page.locator("#submit").is_visible():
            page.click("#submit")
    else:
        image_ready(page)
        box = reveal(page)
        mouse_circle(page, box, bx, by, 0.08, mouse_ms)
        shot(page, f"{name}-3-practice")
    page.wait_for_selector("#practice-done:not([hidden])", timeout=15000)
    shot(page, f"{name}-4-practice-done")
    page.click("#begin")


def mouse_circle(page, box, fx, fy, fr, duration_ms: int) -> None:
    """Keep the mouse moving on a small circle around (fx, fy) of the box for duration_ms."""
    steps = max(1, duration_ms // 40)
    for i in range(steps):
        a = 2 * np.pi * i / 25
        page.mouse.move(box["x"] + (fx + fr * np.cos(a)) * box["width"], box["y"] + (fy + fr * np.sin(a)) * box["height"])
        page.wait_for_timeout(40)


def canvas_pixels(page, selector: str) -> np.ndarray:
    """The canvas' backing store as an H x W x 3 uint8 array."""
    url = page.eval_on_selector(selector, "c => c.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
