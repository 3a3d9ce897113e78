"""Averaging participants' maps per pixel (pure numpy, no Django).

The human map of a stimulus is sum_i m_i / n over included participants. It is kept as a float64
running sum plus n, so folding in one participant costs O(pixels) whatever n is. Folding the same
maps in the same order always gives the same bits, which is what makes a rebuild from raw data
bit-identical to the incremental result.
"""
from __future__ import annotations

import numpy as np


def running_sum_add(total: np.ndarray | None, participant_map: np.ndarray) -> np.ndarray:
    """total + participant_map in float64 (a new array; `total` None means an empty sum)."""
    addend = np.asarray(participant_map, dtype=np.float64)
    if total is None:
        return addend.copy()
    if total.shape != addend.shape:
        raise ValueError(f"map shape {addend.shape} does not match the running sum's {total.shape}")
    return total + addend


def mean_map(total: np.ndarray, n: int) -> np.ndarray:
    """The per-pixel mean (float64); n must be positive."""
    if n <= 0:
        raise ValueError("a mean over zero participants is undefined")
    return total / float(n)
