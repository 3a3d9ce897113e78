"""Has a stimulus' human map settled: split-half reliability, Spearman-Brown projected to n (pure numpy).

The estimate of one (stimulus, task kind) from the maps of its n included participants:

1. The maps are put in ascending response-id order, so the estimate never depends on the order they
   were folded in, and the splits come from a Generator seeded with `split_seed(key, response_ids)`:
   the same responses always give the same splits, hence the same numbers.
2. Each of S splits draws a random permutation; half A is its first m = n // 2 participants, half B
   the next m (n odd: the last one sits out that split, a different one each time).
3. r_half = metric(mean map of A, mean map of B), `metrics.pcc` or `metrics.spearman`.
4. Spearman-Brown projects the agreement of two groups of m to the reliability of a map of n:
   r_n = k r / (1 + (k - 1) r), k = n / m (= 2 r / (1 + r) when n is even). A split whose r_half is
   undefined (a constant half map) counts as -1, the lowest value, and so does any r_n below -1
   (only a negative r_half, a map with no reliability at all, gets there).
5. reliability = the mean of r_n over the splits; lower = their LOWER_PERCENTILE-th percentile (numpy
   linear interpolation), the bound the allocation compares with its target.

With n < 2 no split exists: reliability and lower are NaN. Cost: S x (n x pixels) for the half means
plus S metric evaluations. `saturation_decision` turns an estimate into the record the platform
stores (state, n, reliability, bound, response ids, seed); `saturation_replay` recomputes one from
the responses it names. docs/allocation.md.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np

from annotations.allocation_policy import LOWER_PERCENTILE, reliability_reached

from . import metrics

NAN = float("nan")
METRICS = {"pcc": metrics.pcc, "spearman": metrics.spearman}


def split_seed(key: str, response_ids: Sequence[Hashable]) -> int:
    """A 63-bit seed from the stimulus' key (e.g. "study:stimulus:kind") and the sorted response ids."""
    text = key + "|" + ",".join(str(i) for i in sorted(response_ids))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def spearman_brown(r: float, k: float) -> float:
    """r k / (1 + (k - 1) r): the reliability of a map k times as large as the one r was measured on;
    -1 for an undefined r or a result below -1 (see the module docstring)."""
    if not math.isfinite(r):
        return -1.0
    denominator = 1.0 + (k - 1.0) * r
    if denominator <= 0:
        return -1.0
    return float(min(1.0, max(-1.0, k * r / denominator)))


@dataclass(frozen=True)
class SaturationEstimate:
    """One estimate: n and the response ids (ascending) it was taken on, the metric, the number of
    splits and their seed, the mean r_half, the projected reliability (mean) and its lower bound, and
    the projected value of every split in order."""

    key: str
    n: int
    response_ids: tuple
    metric: str
    splits: int
    seed: int
    r_half: float
    reliability: float
    lower: float
    values: tuple[float, ...]


def saturation_estimate(maps: Sequence[np.ndarray] | np.ndarray, response_ids: Sequence[Hashable], *, key: str,
                        metric: str, splits: int) -> SaturationEstimate:
    """The estimate of one stimulus' map from its participants' maps (each H x W, the same shape;
    maps[i] belongs to response_ids[i], ids distinct). Raises ValueError on mismatched input."""
    if metric not in METRICS:
        raise ValueError(f"unknown reliability metric {metric!r}; use one of {sorted(METRICS)}")
    if splits < 1:
        raise ValueError("at least one split is needed")
    ids = list(response_ids)
    if len(ids) != len(maps) or len(set(ids)) != len(ids):
        raise ValueError("one map per response id, and every id once")
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    ids = tuple(ids[i] for i in order)
    seed = split_seed(key, ids)
    n = len(ids)
    if n < 2:
        return SaturationEstimate(key, n, ids, metric, splits, seed, NAN, NAN, NAN, ())
    stack = np.stack([np.asarray(maps[i], dtype=np.float64) for i in order])
    total = stack.sum(axis=0)
    rng = np.random.default_rng(seed)
    half = n // 2
    k = n / half
    r_halves, values = [], []
    for _ in range(splits):
        perm = rng.permutation(n)
        sum_a = stack[np.sort(perm[:half])].sum(axis=0)
        sum_b = total - sum_a - (stack[perm[-1]] if n % 2 else 0.0)  # the rest, less the one sitting out
        mean_a, mean_b = sum_a / half, sum_b / half
        r = METRICS[metric](mean_a, mean_b)
        r_halves.append(r)
        values.append(spearman_brown(r, k))
    finite = [r for r in r_halves if math.isfinite(r)]
    r_half = float(np.mean(finite)) if finite else NAN
    return SaturationEstimate(key, n, ids, metric, splits, seed, r_half, float(np.mean(values)),
                              float(np.percentile(values, LOWER_PERCENTILE)), tuple(values))


def _number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def saturation_decision(estimate: SaturationEstimate, settings: dict) -> dict:
    """The record stored with a decision (JSON-able; undefined numbers are null): "state" is
    "saturated" when the estimate reaches the study's target at n >= min (`reliability_reached`),
    else "open"; with it the n, the response ids, the metric, splits, seed and key that reproduce it,
    the reliability, the lower bound (and which percentile), the target and min it was judged by."""
    reached = reliability_reached(estimate.n, _number(estimate.lower), settings)
    return {
        "state": "saturated" if reached else "open",
        "key": estimate.key,
        "n": estimate.n,
        "response_ids": list(estimate.response_ids),
        "metric": estimate.metric,
        "splits": estimate.splits,
        "seed": estimate.seed,
        "percentile": LOWER_PERCENTILE,
        "r_half": _number(estimate.r_half),
        "reliability": _number(estimate.reliability),
        "lower": _number(estimate.lower),
        "target": settings["target"],
        "min": settings["min"],
    }


def saturation_replay(decision: dict, maps_by_response: Mapping[Hashable, np.ndarray]) -> dict:
    """The decision recomputed from the responses it names (their maps rebuilt from the raw data):
    equal to `decision` when nothing changed. Raises KeyError naming a response that is missing."""
    ids = list(decision["response_ids"])
    missing = [i for i in ids if i not in maps_by_response]
    if missing:
        raise KeyError(f"response {missing[0]} named by the decision has no map")
    estimate = saturation_estimate([maps_by_response[i] for i in ids], ids, key=decision["key"],
                                   metric=decision["metric"], splits=decision["splits"])
    return saturation_decision(estimate, {"target": decision["target"], "min": decision["min"]})


__all__ = [
    "SaturationEstimate",
    "saturation_decision",
    "saturation_estimate",
    "saturation_replay",
    "spearman_brown",
    "split_seed",
]
