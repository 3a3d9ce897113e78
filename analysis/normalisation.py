"""Scores normalised by the human ceiling and floor, or undefined with a stated reason (pure numpy).

normalised = (model - floor) / (ceiling - floor): 0 at the floor (what two unrelated maps score),
1 at the ceiling (what two halves of the participants score). For a lower-is-better metric (KLD) the
same ratio reads (floor - model) / (floor - ceiling). It is a ratio over ceiling - floor, so it is
only defined where the ceiling is better than the floor by a margin:

- the ceiling must be better (above the floor; below it for a lower-is-better metric);
- where both have a confidence interval (a summary over stimuli: bootstrap 95% CIs), the two CIs
  must not overlap;
- where no CI exists (one stimulus, one value each), the gap |ceiling - floor| must be at least
  MARGIN (5%) of |ceiling| + |floor|, a test that holds on every metric's scale (KLD and NSS too).

Otherwise the value is NaN and the reason says why (ceiling 0.7996 over floor 0.7994 would give
-414 for a slightly worse model: noise, not a score). Every normalised value of the platform (per
stimulus and per summary row; tables, API, report, figures) comes from `normalise`.
"""
from __future__ import annotations

import numpy as np

MARGIN = 0.05
NO_BOUNDS = "no human ceiling or floor"
NO_SCORE = "score undefined"


def _flat(x, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.float64), shape).ravel()


def _ci(interval, shape) -> tuple[np.ndarray, np.ndarray]:
    if interval is None:
        return _flat(np.nan, shape), _flat(np.nan, shape)
    return _flat(interval[0], shape), _flat(interval[1], shape)


def normalise(model, ceiling, floor, *, lower_is_better=False, ceiling_ci=None, floor_ci=None) -> tuple[np.ndarray, np.ndarray]:
    """(values, reasons) of the normalised score for each cell of the broadcast inputs.

    values: float64 array, NaN where undefined; reasons: object array of str, "" where defined.
    `lower_is_better` (bool or bool array) gives each cell's metric direction; `ceiling_ci` and
    `floor_ci` are (low, high) pairs (arrays or floats) of 95% CIs, NaN or None where none exists.
    """
    shape = np.broadcast_shapes(*(np.shape(x) for x in (model, ceiling, floor, lower_is_better)))
    m, c, f = (_flat(x, shape) for x in (model, ceiling, floor))
    lower = np.broadcast_to(np.asarray(lower_is_better, dtype=bool), shape).ravel()
    (c_lo, c_hi), (f_lo, f_hi) = _ci(ceiling_ci, shape), _ci(floor_ci, shape)
    gap = np.where(lower, f - c, c - f)  # > 0: the ceiling is better than the floor
    no_bounds = ~(np.isfinite(c) & np.isfinite(f))
    wrong_way = ~no_bounds & ~(gap > 0)
    has_ci = np.isfinite(c_lo) & np.isfinite(c_hi) & np.isfinite(f_lo) & np.isfinite(f_hi)
    overlap = has_ci & np.where(lower, c_hi >= f_lo, c_lo <= f_hi)
    too_close = ~has_ci & (gap < MARGIN * (np.abs(c) + np.abs(f)))
    too_close = ~no_bounds & ~wrong_way & (overlap | too_close)
    no_score = ~no_bounds & ~wrong_way & ~too_close & ~np.isfinite(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = (m - f) / (c - f)
    values = np.where(no_bounds | wrong_way | too_close | no_score, np.nan, values)
    reasons = np.full(m.size, "", dtype=object)
    reasons[no_bounds] = NO_BOUNDS
    reasons[no_score] = NO_SCORE
    for i in np.flatnonzero(wrong_way):
        direction = "below" if lower[i] else "above"
        reasons[i] = f"ceiling {c[i]:.4g} is not {direction} floor {f[i]:.4g}"
    for i in np.flatnonzero(too_close):
        if has_ci[i]:
            reasons[i] = f"ceiling CI [{c_lo[i]:.4g}, {c_hi[i]:.4g}] overlaps floor CI [{f_lo[i]:.4g}, {f_hi[i]:.4g}]"
        else:
            reasons[i] = (f"ceiling {c[i]:.4g} and floor {f[i]:.4g} differ by {abs(c[i] - f[i]):.2g}, "
                          f"under {MARGIN:.0%} of |ceiling| + |floor|")
    return values.reshape(shape), reasons.reshape(shape)


def normalise_one(model, ceiling, floor, *, lower_is_better=False, ceiling_ci=None, floor_ci=None) -> tuple[float, str]:
    """`normalise` of one value: (normalised score or NaN, "" or the reason it is undefined).
    None counts as missing."""
    def missing(x):
        return np.nan if x is None else x

    values, reasons = normalise(missing(model), missing(ceiling), missing(floor), lower_is_better=lower_is_better,
                                ceiling_ci=None if ceiling_ci is None else tuple(map(missing, ceiling_ci)),
                                floor_ci=None if floor_ci is None else tuple(map(missing, floor_ci)))
    return float(values[()]), str(reasons[()])


def bounds_note(ceiling, floor, *, lower_is_better=False, ceiling_ci=None, floor_ci=None) -> str:
    """"" when ceiling and floor are far enough apart to normalise by, else the reason they are not."""
    return normalise_one(ceiling, ceiling, floor, lower_is_better=lower_is_better, ceiling_ci=ceiling_ci, floor_ci=floor_ci)[1]
