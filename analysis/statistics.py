"""Means over stimuli with bootstrap confidence intervals (pure numpy, no Django).

Every mean the reports show comes with the sample std and a percentile bootstrap CI of the mean:
resample the stimuli with replacement `resamples` times, take the (1 - level) / 2 and (1 + level) / 2
percentiles of the resampled means. NaN (undefined) values are left out first. Seeded through the
Generator passed in. Normalised scores (`normalised_columns`) follow `normalisation.py`. Vectorised: the resampling is a (resamples x n) count matrix times the values,
so many metrics of one group share one draw.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .normalisation import NO_BOUNDS, NO_SCORE, normalise

NAN = float("nan")
RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and bootstrap CI of the mean over n values; NaN when undefined
    (no finite value; std and CI need two)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


EMPTY = Summary(0, NAN, NAN, NAN, NAN)


def _resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples x n) float64: how often each of n items is drawn in each resample of size n."""
    draws = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


class Resampler:
    """Resampling draws over a fixed list of items, one per subset of them (cached): everything
    computed over the same items shares a draw, e.g. every method's scores over a condition's
    stimuli (a paired bootstrap: method differences are not blurred by different draws)."""

    def __init__(self, rng: np.random.Generator, resamples: int = RESAMPLES):
        self.rng, self.resamples, self._cache = rng, resamples, {}

    def counts(self, rows: np.ndarray) -> np.ndarray:
        """(resamples x k) draw counts for the k items where `rows` (bool) is True."""
        key = np.asarray(rows, dtype=bool).tobytes()
        if key not in self._cache:
            self._cache[key] = _resample_counts(int(np.count_nonzero(rows)), self.resamples, self.rng)
        return self._cache[key]


def bootstrap_columns(
    values: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    resampler: Resampler | None = None,
) -> list[Summary]:
    """A Summary per column of `values` (n items x m columns, NaN = missing). Columns finite on the
    same items share one resampling draw (drawn in order of first appearance, or from `resampler`)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError("values must be an (items x columns) array")
    resampler = resampler or Resampler(rng, resamples)
    out: list[Summary | None] = [None] * values.shape[1]
    finite = np.isfinite(values)
    patterns: dict[bytes, list[int]] = {}
    for j in range(values.shape[1]):
        patterns.setdefault(finite[:, j].tobytes(), []).append(j)
    for columns in patterns.values():
        rows = finite[:, columns[0]]
        data = values[rows][:, columns]
        k = data.shape[0]
        if k == 0:
            summaries = [EMPTY] * len(columns)
        elif k == 1:
            summaries = [Summary(1, float(v), NAN, NAN, NAN) for v in data[0]]
        else:
            means = resampler.counts(rows) @ data / k
            lows, highs = np.percentile(means, [50 * (1 - level), 50 * (1 + level)], axis=0)
            summaries = [
                Summary(k, float(data[:, i].mean()), float(data[:, i].std(ddof=1)), float(lows[i]), float(highs[i]))
                for i in range(len(columns))
            ]
        for j, summary in zip(columns, summaries):
            out[j] = summary
    return out  # type: ignore[return-value]


def bootstrap_summary(
    values: Sequence[float | None], *, rng: np.random.Generator, resamples: int = RESAMPLES, level: float = LEVEL
) -> Summary:
    """The Summary of one list of values (None and NaN left out)."""
    column = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64).reshape(-1, 1)
    return bootstrap_columns(column, rng=rng, resamples=resamples, level=level)[0]


@dataclass(frozen=True)
class NormalisedSummary(Summary):
    """A Summary of a normalised score, with `note`: "" where defined, else why it is undefined
    (then mean, std and CI are NaN; n still counts the stimuli whose raw means were compared)."""

    note: str = ""


def _ratio(m, c, f):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (m - f) / (c - f)


def _percentile_columns(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (resamples x k) draws: the CI's low and high percentiles over its finite draws
    (NaN for a column without any)."""
    q = [50 * (1 - level), 50 * (1 + level)]
    finite = np.isfinite(draws)
    if finite.all():
        low, high = np.percentile(draws, q, axis=0)
        return low, high
    low, high = np.full(draws.shape[1], np.nan), np.full(draws.shape[1], np.nan)
    for i in range(draws.shape[1]):
        if finite[:, i].any():
            low[i], high[i] = np.percentile(draws[finite[:, i], i], q)
    return low, high


def normalised_columns(
    model: np.ndarray,
    ceiling: np.ndarray,
    floor: np.ndarray,
    *,
    lower_is_better: Sequence[bool] | bool = False,
    rng: np.random.Generator | None = None,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    resampler: Resampler | None = None,
) -> list[NormalisedSummary]:
    """Per column j of the (n stimuli x m) arrays: the normalised score of the means, (mean model -
    mean floor) / (mean ceiling - mean floor), over the stimuli where all three are finite (a
    stimulus whose own normalised score is undefined still counts here), with a bootstrap CI
    resampling those stimuli.

    Undefined (NaN, with the reason in `note`) unless the mean ceiling is better than the mean floor
    by the margin of `normalisation.normalise`: their bootstrap CIs (the same draws) must not
    overlap; with one stimulus (no CI) the gap must reach 5% of |ceiling| + |floor|. `std` is the
    std of the per-stimulus normalised scores that are defined (`normalise` per stimulus, no CI).
    `lower_is_better`: one bool for all columns or one per column. Columns defined on the same
    stimuli share one draw and one matrix product."""
    model, ceiling, floor = (np.asarray(a, dtype=np.float64) for a in (model, ceiling, floor))
    lower = np.broadcast_to(np.asarray(lower_is_better, dtype=bool), (model.shape[1],))
    resampler = resampler or Resampler(rng, resamples)
    bounded = np.isfinite(ceiling) & np.isfinite(floor)
    defined = np.isfinite(model) & bounded
    out = [NormalisedSummary(0, NAN, NAN, NAN, NAN, NO_SCORE if bounded[:, j].any() else NO_BOUNDS) for j in range(model.shape[1])]
    patterns: dict[bytes, list[int]] = {}
    for j in range(model.shape[1]):
        patterns.setdefault(defined[:, j].tobytes(), []).append(j)
    for columns in patterns.values():
        rows = defined[:, columns[0]]
        m, c, f = (a[rows][:, columns] for a in (model, ceiling, floor))
        n, k = m.shape
        if n == 0:
            continue
        per_stimulus, _ = normalise(m, c, f, lower_is_better=lower[columns])
        none = (np.full(k, np.nan), np.full(k, np.nan))
        cis, boot_cis = (none, none), none  # one stimulus: no CI (the gap rule applies)
        if n > 1:
            means = resampler.counts(rows) @ np.hstack([m, c, f]) / n
            cis = _percentile_columns(means[:, k : 2 * k], level), _percentile_columns(means[:, 2 * k :], level)
            boot_cis = _percentile_columns(_ratio(means[:, :k], means[:, k : 2 * k], means[:, 2 * k :]), level)
        points, notes = normalise(m.mean(axis=0), c.mean(axis=0), f.mean(axis=0), lower_is_better=lower[columns],
                                  ceiling_ci=cis[0], floor_ci=cis[1])
        for i, j in enumerate(columns):
            if notes[i]:
                out[j] = NormalisedSummary(n, NAN, NAN, NAN, NAN, notes[i])
                continue
            ratios = per_stimulus[:, i][np.isfinite(per_stimulus[:, i])]
            std = float(ratios.std(ddof=1)) if ratios.size > 1 else NAN
            out[j] = NormalisedSummary(n, float(points[i]), std, float(boot_cis[0][i]), float(boot_cis[1][i]))
    return out


def normalised_summary(
    model: Sequence[float],
    ceiling: Sequence[float],
    floor: Sequence[float],
    *,
    rng: np.random.Generator | None = None,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    resampler: Resampler | None = None,
    lower_is_better: bool = False,
) -> NormalisedSummary:
    """`normalised_columns` of one column."""
    columns = [np.asarray(x, dtype=np.float64).reshape(-1, 1) for x in (model, ceiling, floor)]
    return normalised_columns(*columns, lower_is_better=lower_is_better, rng=rng, resamples=resamples, level=level,
                              resampler=resampler)[0]
