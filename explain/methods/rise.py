"""RISE (Petsiuk, Das and Saenko, BMVC 2018, "RISE: Randomized Input Sampling for Explanation of
Black-box Models"), as the authors' code `eclique/RISE` (explanations.py, class RISE) computes it.

N binary grids of s x s cells, each cell on with probability p1, are upsampled bilinearly to
(s + 1) * cell (cell = ceil(input / s)) and cropped at a random shift in [0, cell) per axis, giving
soft masks M_i at the input size. saliency = sum_i P_c(x * M_i) M_i / (N p1), where P_c is the target's
softmax probability and x * M_i zeroes pixels in normalised space (the dataset's mean colour).

raw = comparison = the saliency (non-negative) at the model's input resolution. Forward-only: the
masked inputs are scored in batches (`batching.py`) and the masks are built per batch, so memory stays
at one batch whatever N. Masks come from a torch generator seeded with `seed` (grids first, then
shifts); `rise_grids` and `rise_masks` are public so tests can feed the same masks to a literal port.
"""
from __future__ import annotations

import math

import torch

from ..method_catalogue import METHOD_SPECS
from .base import Method, MethodOutput
from .batching import batch_scores, batch_size_for, device_of, spans


def rise_grids(n: int, s: int, p1: float, size: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(grids n x s x s float32 in {0, 1}, shifts n x 2 int64 in [0, cell)) from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    grids = (torch.rand(n, s, s, generator=generator) < p1).float()
    cells = [math.ceil(side / s) for side in size]
    shifts = torch.stack([torch.randint(0, c, (n,), generator=generator) for c in cells], dim=1)
    return grids, shifts


def rise_masks(grids: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """k x H x W soft masks: each grid upsampled linearly to (s + 1) * cell and cropped at its shift,
    exactly as skimage `resize(order=1, mode='reflect', anti_aliasing=False)` does in eclique/RISE
    (half-pixel centres; 'reflect' mirrors about the edge sample). Separable: M = A_rows G A_cols^T."""
    s = grids.shape[-1]
    rows = _interpolation_rows(s, (s + 1) * math.ceil(size[0] / s), grids.device)
    cols = _interpolation_rows(s, (s + 1) * math.ceil(size[1] / s), grids.device)
    offsets_h = shifts[:, 0, None] + torch.arange(size[0], device=grids.device)
    offsets_w = shifts[:, 1, None] + torch.arange(size[1], device=grids.device)
    return rows[offsets_h] @ grids @ cols[offsets_w].transpose(1, 2)


def _interpolation_rows(s: int, up: int, device) -> torch.Tensor:
    """up x s matrix of linear-interpolation weights, numpy 'reflect' (ndimage 'mirror') boundary."""
    centres = (torch.arange(up, dtype=torch.float64) + 0.5) * s / up - 0.5
    low = torch.floor(centres)
    frac = centres - low
    weights = torch.zeros(up, s, dtype=torch.float64)
    for index, weight in ((low, 1 - frac), (low + 1, frac)):
        index = index.long()
        if s > 1:
            index = torch.where(index < 0, -index, index)
            index = torch.where(index > s - 1, 2 * (s - 1) - index, index)
        else:
            index = torch.zeros_like(index)
        weights.index_put_((torch.arange(up), index), weight, accumulate=True)
    return weights.float().to(device)


def rise_saliency(net, x, target: int, grids, shifts, batch_size: int | None = None) -> torch.Tensor:
    """H x W float32: sum_i P_target(x * M_i) M_i / (N p1_hat) with N = len(grids); the caller divides
    by p1 (kept out so a test can pass any masks)."""
    device = device_of(net, x)
    height, width = x.shape[-2:]
    size = batch_size_for(device, batch_size)
    total = torch.zeros(height * width, dtype=torch.float32, device=device)
    for start, stop in spans(grids.shape[0], size):
        masks = rise_masks(grids[start:stop].to(device), shifts[start:stop].to(device), (height, width))
        scores = batch_scores(net, x * masks.unsqueeze(1), target)
        total += scores @ masks.view(stop - start, -1)
    return (total / grids.shape[0]).view(height, width)


class RISE(Method):
    spec = METHOD_SPECS["rise"]

    def attribute(self, net, x, target, params) -> MethodOutput:
        size = tuple(x.shape[-2:])
        grids, shifts = rise_grids(params["n_masks"], params["s"], params["p1"], size, params["seed"])
        maps = [
            rise_saliency(net, x[i : i + 1], int(target[i]), grids, shifts, params["batch_size"] or None) / params["p1"]
            for i in range(x.shape[0])
        ]
        raw = torch.stack(maps)
        return MethodOutput(raw=raw, comparison=raw.clamp(min=0))
