"""Simulated participants for the allocation and quality benches: one model, shared by both.

Ground truth: per image an attention density (H x W, sums to 1), a mixture of 1-4 Gaussian blobs with
random centres, spreads and weights, so images range from easy (one tight blob) to hard (several wide
ones). `centre_bias=True` draws the blob centres around the image centre (real photos are
centre-biased for everyone).

Behaviours (`respond`), each giving the raw payload the platform would store plus a duration:
- honest: bubble clicks (Poisson around `clicks`, at least `min_marks`) drawn from the density;
  paint strokes (Poisson around `strokes`) of a few points around points drawn from the density;
- random: the same effort at uniformly random places;
- centre: the same effort around the image centre, whatever the image;
- minimal: the fewest marks the study accepts, honest places, and a short time;
- copy: their first answer honest, then that same payload again on every later image.
Durations: honest-like behaviours ~ lognormal around `DURATION_MS` (a per-participant speed times a
per-trial factor); minimal ~ lognormal around MINIMAL_MS.

Maps go through the platform's own recipes (`analysis.recipes.participant_map`): Gaussian points of
`sigma_px` for clicks, the binary paint mask for strokes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.recipes import participant_map

BEHAVIOURS = ("honest", "random", "centre", "minimal", "copy")
LOW_EFFORT = BEHAVIOURS[1:]
DURATION_MS = 6000.0  # honest median time per trial
MINIMAL_MS = 1200.0
SPEED_SIGMA, TRIAL_SIGMA = 0.3, 0.3  # log-sd of a participant's speed and of one trial around it


def ground_truth(rng: np.random.Generator, size: int, *, centre_bias: bool = False) -> np.ndarray:
    """size x size float64 density summing to 1: 1-4 Gaussian blobs, spreads 6-20% of the side."""
    blobs = int(rng.integers(1, 5))
    if centre_bias:
        centres = np.clip(rng.normal(0.5, 0.12, (blobs, 2)), 0.1, 0.9) * size
    else:
        centres = rng.uniform(0.15, 0.85, (blobs, 2)) * size
    spreads = rng.uniform(0.06, 0.2, blobs) * size
    weights = rng.dirichlet(np.ones(blobs))
    axis = np.arange(size) + 0.5
    xs, ys = np.meshgrid(axis, axis)
    density = np.zeros((size, size))
    for (cx, cy), s, w in zip(centres, spreads, weights):
        blob = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * s * s))
        density += w * blob / blob.sum()
    return density / density.sum()


def sample_points(rng: np.random.Generator, density: np.ndarray, count: int) -> np.ndarray:
    """count (x, y) points drawn from the density (a pixel by its mass, then uniform inside it)."""
    h, w = density.shape
    flat = rng.choice(h * w, size=count, p=density.ravel())
    return np.stack([flat % w + rng.random(count), flat // w + rng.random(count)], axis=1)


@dataclass
class Participant:
    """One simulated participant: behaviour, speed, and (copy) the answer they repeat."""

    behaviour: str
    speed: float
    kind: str = "bubble"
    copied: dict | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ModelSettings:
    """Image side (px), task kind, effort of an honest answer, and the map recipe's sizes (px)."""

    size: int = 64
    kind: str = "bubble"
    clicks: float = 5.0
    strokes: float = 6.0
    min_marks: int = 2
    sigma_px: float = 3.0
    bubble_radius: float = 4.0
    brush: tuple[float, float] = (2.5, 5.0)

    def recipe(self) -> dict:
        if self.kind == "paint":
            return {"kind": "paint_mask", "version": 1}
        return {"kind": "gaussian_points", "points": "clicks", "sigma_px": self.sigma_px, "version": 1}


def participant_new(rng: np.random.Generator, behaviour: str = "honest", kind: str = "bubble") -> Participant:
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}")
    return Participant(behaviour, float(np.exp(rng.normal(0.0, SPEED_SIGMA))), kind)


def _where(rng, behaviour: str, truth: np.ndarray, count: int) -> np.ndarray:
    size = truth.shape[0]
    if behaviour == "random":
        return rng.uniform(0, size, (count, 2))
    if behaviour == "centre":
        return np.clip(rng.normal(size / 2, 0.06 * size, (count, 2)), 0, size - 1e-6)
    return sample_points(rng, truth, count)


def _marks(rng, mean: float, settings: ModelSettings, behaviour: str) -> int:
    if behaviour == "minimal":
        return settings.min_marks if settings.kind == "bubble" else 1
    return max(settings.min_marks if settings.kind == "bubble" else 1, int(rng.poisson(mean)))


def _payload(rng, behaviour: str, truth: np.ndarray, settings: ModelSettings) -> dict:
    size = truth.shape[0]
    display = {"width": size, "height": size, "dpr": 1, "viewport": [size, size]}
    if settings.kind == "bubble":
        where = _where(rng, behaviour, truth, _marks(rng, settings.clicks, settings, behaviour))
        clicks = [[float(x), float(y), float(300 * (i + 1))] for i, (x, y) in enumerate(where)]
        return {"display": display, "clicks": clicks, "bubble_radius": settings.bubble_radius}
    strokes = []
    for x, y in _where(rng, behaviour, truth, _marks(rng, settings.strokes, settings, behaviour)):
        radius = float(rng.uniform(*settings.brush))
        steps = 1 if behaviour == "minimal" else int(rng.integers(2, 5))
        path = np.cumsum(rng.normal(0, radius, (steps, 2)), axis=0) + [x, y]
        path = np.clip(path, 0, size - 1e-6)
        strokes.append({"radius": radius, "erase": False,
                        "points": [[float(px), float(py), float(40 * i)] for i, (px, py) in enumerate(path)]})
    return {"display": display, "strokes": strokes}


def respond(rng: np.random.Generator, who: Participant, truth: np.ndarray, settings: ModelSettings) -> tuple[dict, float]:
    """(payload, duration_ms) of one answer of `who` on the image whose density is `truth`."""
    behaviour = who.behaviour
    if behaviour == "copy" and who.copied is not None:
        payload = who.copied
    else:
        payload = _payload(rng, "honest" if behaviour == "copy" else behaviour, truth, settings)
        if behaviour == "copy":
            who.copied = payload
    median = MINIMAL_MS if behaviour == "minimal" else DURATION_MS
    duration = median * who.speed * float(np.exp(rng.normal(0.0, TRIAL_SIGMA)))
    return payload, duration


def answer_map(payload: dict, settings: ModelSettings) -> np.ndarray:
    """The participant's map of this answer, by the platform's recipe (H x W float64)."""
    return participant_map(payload, settings.recipe(), height=settings.size, width=settings.size).density
