"""A live paint study with many distinct photos, and the raw paint payload the page would send."""
from __future__ import annotations

import uuid

import numpy as np
from PIL import Image

from studyserver.researcher.demo import demo_photo_bytes
from studyserver.researcher.services import studies
from tests.conftest import png_bytes, rect_stroke

_BASE = None


def photo(i: int) -> bytes:
    """A distinct 320 x 240 photo: the demo cat, rolled and tinted by i."""
    global _BASE
    if _BASE is None:
        import io

        _BASE = np.asarray(Image.open(io.BytesIO(demo_photo_bytes("chelsea.png"))).convert("RGB").resize((320, 240)))
    rng = np.random.default_rng(i)
    image = np.clip(np.roll(_BASE, (i * 13) % 320, axis=1).astype(np.int16) + rng.integers(-15, 16, 3), 0, 255)
    return png_bytes(image.astype(np.uint8))


def live_paint_study(owner, *, n_stimuli: int, per_stimulus: int, per_participant: int):
    study = studies.study_create(owner=owner, title="Fault test", slug=f"f-{uuid.uuid4().hex[:10]}",
                                 participants_per_stimulus=per_stimulus, stimuli_per_participant=per_participant)
    for i in range(n_stimuli):
        studies.stimulus_create(study=study, data=photo(i), filename=f"photo-{i}.png", class_index=285)
    return studies.study_launch(study=study)


def paint(trial: dict) -> dict:
    """A zig-zag stroke over a random rectangle of the image, as the paint page records it."""
    rng = np.random.default_rng()
    w, h = trial["width"], trial["height"]
    x0, y0 = rng.uniform(0.05, 0.4) * w, rng.uniform(0.05, 0.4) * h
    stroke = rect_stroke(x0, y0, x0 + rng.uniform(0.2, 0.5) * w, y0 + rng.uniform(0.2, 0.5) * h, radius=8.0)
    return {"display": {"width": w, "height": h, "dpr": 1}, "pointer_types": ["mouse"], "strokes": [stroke]}
