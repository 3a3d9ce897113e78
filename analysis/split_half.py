"""How reliable is a human map: ceiling, floor, and reliability vs n (pure numpy).

ClickMe's processing:
- ceiling: split the n participants into random halves A (n // 2) and B (the rest), bootstrap each
  half back to n participants (n draws with replacement), score P = mean(A*) against Q = mean(B*)
  (fixation metrics: against B*'s fixation map); repeat and average.
- floor: the same, with P the bootstrapped half-map of *another* stimulus (resized to this one's
  shape as `metrics.resize_to` does): what two unrelated maps score.
- normalised score = (model - floor) / (ceiling - floor), defined only where the ceiling is better
  than the floor by a margin: `normalisation.py`.
- reliability curve: two disjoint groups of k participants each (plain means), k = 1 .. n // 2.
Means over stimuli and their bootstrap CIs are `statistics.py`.

Everything takes a numpy Generator, so a seeded run gives the same numbers every time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from . import metrics
from .scoring import HumanReference, metric_suite

NAN = float("nan")
CURVE_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"pcc": metrics.pcc, "sim": metrics.sim}


@dataclass(frozen=True)
class ParticipantStack:
    """The included participants' maps of one stimulus: `maps` (n, H, W) float64, and for fixation
    kinds `fixations` (n, H, W) float32 counts (None for paint)."""

    maps: np.ndarray
    fixations: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.maps.shape[0])

    def mean_of(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The weighted mean map (weights sum to 1) and the fixation map of participants with weight."""
        mean = np.einsum("i,ijk->jk", weights, self.maps)
        fixations = None
        if self.fixations is not None:
            fixations = self.fixations[weights > 0].any(axis=0)
        return mean, fixations


def _bootstrap_weights(members: np.ndarray, n_total: int, size: int, rng: np.random.Generator) -> np.ndarray:
    draws = rng.choice(members, size=size, replace=True)
    return np.bincount(draws, minlength=n_total) / float(size)


def _half_split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 :]


@dataclass
class CeilingResult:
    """Per metric: ceiling and floor means and stds over the repetitions that gave a finite value."""

    n_participants: int
    repetitions: int
    ceiling: dict[str, list[float]] = field(default_factory=dict)
    floor: dict[str, list[float]] = field(default_factory=dict)

    @staticmethod
    def _stat(values: list[float]) -> tuple[float, float]:
        finite = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
        if finite.size == 0:
            return NAN, NAN
        return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else 0.0

    def summary(self, metric: str) -> dict[str, float]:
        c_mean, c_std = self._stat(self.ceiling.get(metric, []))
        f_mean, f_std = self._stat(self.floor.get(metric, []))
        return {"ceiling": c_mean, "ceiling_std": c_std, "floor": f_mean, "floor_std": f_std}


def ceiling_and_floor(
    own: ParticipantStack,
    partners: Sequence[ParticipantStack],
    *,
    repetitions: int,
    rng: np.random.Generator,
) -> CeilingResult:
    """Split-half ceiling (bootstrapped to n) and floor (against partner stimuli, used in turn) for
    every metric of the suite. Needs n >= 2 (else no repetition runs); partners with n < 2 are
    skipped, and without any the floor stays empty. Cost per repetition: O(n x pixels) for the half
    maps plus two metric suites."""
    result = CeilingResult(n_participants=own.n, repetitions=repetitions)
    partners = [p for p in partners if p.n >= 2]
    if own.n < 2:
        return result
    for r in range(repetitions):
        half_a, half_b = _half_split(own.n, rng)
        mean_a, _ = own.mean_of(_bootstrap_weights(half_a, own.n, own.n, rng))
        mean_b, fix_b = own.mean_of(_bootstrap_weights(half_b, own.n, own.n, rng))
        reference = HumanReference.prepare(mean_b, fix_b)
        for name, value in metric_suite(mean_a, reference).items():
            result.ceiling.setdefault(name, []).append(value)
        if partners:
            partner = partners[r % len(partners)]
            other_a, _ = _half_split(partner.n, rng)
            other_mean, _ = partner.mean_of(_bootstrap_weights(other_a, partner.n, partner.n, rng))
            for name, value in metric_suite(other_mean, reference).items():
                result.floor.setdefault(name, []).append(value)
    return result


def reliability_curve(
    own: ParticipantStack,
    *,
    repetitions: int,
    rng: np.random.Generator,
    metric_names: Sequence[str] = tuple(CURVE_METRICS),
) -> dict[str, list[list[float]]]:
    """metric -> [[k, mean, std, finite repetitions], ...] for k = 1 .. n // 2: the agreement of two
    disjoint random groups of k participants' mean maps. Empty lists when n < 2."""
    curves: dict[str, list[list[float]]] = {name: [] for name in metric_names}
    for k in range(1, own.n // 2 + 1):
        values: dict[str, list[float]] = {name: [] for name in metric_names}
        for _ in range(repetitions):
            order = rng.permutation(own.n)
            mean_a = own.maps[order[:k]].mean(axis=0)
            mean_b = own.maps[order[k : 2 * k]].mean(axis=0)
            for name in metric_names:
                values[name].append(CURVE_METRICS[name](mean_a, mean_b))
        for name in metric_names:
            finite = np.asarray([v for v in values[name] if np.isfinite(v)])
            if finite.size:
                std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
                curves[name].append([k, float(finite.mean()), std, int(finite.size)])
            else:
                curves[name].append([k, NAN, NAN, 0])
    return curves
