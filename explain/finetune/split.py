"""Train/validation split by source image, seeded.

Variants of one source (its corruptions, its other conditions) share the source's id and always
land on the same side, so the held-out images are new images to the model, not new noise on an
image it trained on. The split is over sources: the validation side gets round(fraction * sources)
of them (at least one, and at least one is left to train on), drawn with numpy's generator seeded
by `seed`; the same facts and seed always give the same split.
"""
from __future__ import annotations

import numpy as np


class SplitImpossible(ValueError):
    """Too few source images to hold any out; the message says how many there are."""


def split_by_source(facts: list[dict], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, validation indices) into `facts` (dicts with a "source_id"), each ascending."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1 (exclusive), got {fraction}")
    sources = sorted({f["source_id"] for f in facts}, key=lambda s: (str(type(s)), s))
    if len(sources) < 2:
        raise SplitImpossible(f"{len(sources)} source image(s): a held-out split needs at least 2")
    count = min(max(int(round(fraction * len(sources))), 1), len(sources) - 1)
    order = np.random.default_rng([int(seed), 7]).permutation(len(sources))
    held_out = {sources[i] for i in order[:count]}
    validation = [i for i, f in enumerate(facts) if f["source_id"] in held_out]
    train = [i for i, f in enumerate(facts) if f["source_id"] not in held_out]
    return train, validation
