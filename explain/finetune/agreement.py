"""How well a model map agrees with a human map, per image, and paired differences between models.

Pure numpy/scipy, float64. The definitions are the platform's (Pearson of the flattened maps;
Spearman = Pearson of average ranks, as `scipy.stats.spearmanr`); a constant map gives NaN. Here
they run on many maps at once (rows of B x N arrays), and a test holds them equal to the
platform's single-map versions.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

NAN = float("nan")


def pcc_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair of B x N arrays (any trailing shape is flattened), in
    [-1, 1]; NaN where either row is constant or not finite."""
    p = np.asarray(p, dtype=np.float64).reshape(len(p), -1)
    q = np.asarray(q, dtype=np.float64).reshape(len(q), -1)
    p = p - p.mean(axis=1, keepdims=True)
    q = q - q.mean(axis=1, keepdims=True)
    denominator = np.sqrt(np.einsum("ij,ij->i", p, p) * np.einsum("ij,ij->i", q, q))
    numerator = np.einsum("ij,ij->i", p, q)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((denominator > 0) & np.isfinite(denominator), numerator / denominator, NAN)
    return np.clip(r, -1.0, 1.0)


def spearman_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Spearman correlation (average ranks for ties) of each row pair; NaN where a row is constant."""
    p = np.asarray(p, dtype=np.float64).reshape(len(p), -1)
    q = np.asarray(q, dtype=np.float64).reshape(len(q), -1)
    finite = np.isfinite(p).all(axis=1) & np.isfinite(q).all(axis=1)
    r = pcc_rows(rankdata(np.nan_to_num(p), axis=1), rankdata(np.nan_to_num(q), axis=1))
    return np.where(finite, r, NAN)


def paired_bootstrap(values, reference, *, resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict:
    """Mean of values - reference over the pairs where both are finite, with a percentile bootstrap
    CI that resamples pairs (images): {"mean", "ci_low", "ci_high", "n"}; None values where n == 0."""
    values, reference = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    keep = np.isfinite(values) & np.isfinite(reference)
    differences = values[keep] - reference[keep]
    n = int(differences.size)
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    rng = np.random.default_rng([seed, n])
    means = differences[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"mean": float(differences.mean()), "ci_low": float(low), "ci_high": float(high), "n": n}


def finite_mean(values) -> dict:
    """{"mean", "n"} over the finite values (mean None when there is none)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return {"mean": float(finite.mean()) if finite.size else None, "n": int(finite.size)}
