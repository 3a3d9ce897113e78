"""A demonstration that runs on a CPU in seconds: scikit-learn's bundled 8 x 8 digits as stimuli.

Each digit is upsampled to 32 x 32 (bilinear), scaled to [0, 1] and given Gaussian pixel noise; its
"human map" is the clean upsampled digit, i.e. the strokes, which is where a person looks to read it.
Every digit is its own source image. The model is `digits_net`, a small CNN split into `features`
and `head` like the zoo's models.

`decoy=True` adds Ross et al.'s (2017) decoy: a 6 x 6 patch in a corner (the corner chosen per
image) whose grey level encodes the label on the training side and is random on the held-out side;
the patch lies outside the strokes, so a model that reads it is "right for the wrong reasons".
The sides are those `split_by_source` draws for the same `validation_fraction` and `seed`, which
`finetune_run` then draws again.

Imports scikit-learn (for its bundled data file; nothing is downloaded).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from ..zoo import SplitNet
from .dataset import TensorMapDataset
from .split import split_by_source

SIZE = 32
PATCH = 6


def digits_net(seed: int = 0, classes: int = 10) -> SplitNet:
    """A seeded two-conv CNN for 1 x 32 x 32 inputs; `features` is its last conv map (16 x 16 x 16)."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        head = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, classes))
    finally:
        torch.random.set_rng_state(generator_state)
    return SplitNet(features, head)


def digits_data(seed: int = 0, *, count: int | None = None, noise: float = 0.3, decoy: bool = False,
                validation_fraction: float = 1 / 3) -> TensorMapDataset:
    """The first `count` (default all 1797) digits as a TensorMapDataset: images 1 x 32 x 32
    (standardised), labels 0-9, strokes as human maps (>= 0, max 1). `seed` draws the noise (and
    the decoy); pass the run's seed and validation_fraction so the decoy sides match its split."""
    digits = load_digits()
    clean = torch.from_numpy(digits.images[:count].astype(np.float32) / 16.0)[:, None]
    strokes = F.interpolate(clean, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(min=0)
    generator = torch.Generator().manual_seed(int(seed))
    images = strokes + noise * torch.randn(strokes.shape, generator=generator)
    labels = torch.from_numpy(digits.target[:count].astype(np.int64))
    if decoy:
        images = _decoy_added(images, labels, seed, validation_fraction, generator)
    images = (images - images.mean()) / images.std()
    return TensorMapDataset(images, labels, strokes[:, 0])


def _decoy_added(images: torch.Tensor, labels: torch.Tensor, seed: int, fraction: float, generator) -> torch.Tensor:
    facts = [{"source_id": i} for i in range(len(images))]
    _train, held_out = split_by_source(facts, fraction, seed)
    level = labels.float() / 9.0
    level[held_out] = torch.randint(0, 10, (len(held_out),), generator=generator).float() / 9.0
    corners = torch.randint(0, 4, (len(images),), generator=generator)
    out = images.clone()
    for i, corner in enumerate(corners.tolist()):
        top = 0 if corner < 2 else SIZE - PATCH
        left = 0 if corner % 2 == 0 else SIZE - PATCH
        out[i, :, top:top + PATCH, left:left + PATCH] = level[i]
    return out
