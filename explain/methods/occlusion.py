"""Occlusion (Zeiler and Fergus, ECCV 2014, "Visualizing and Understanding Convolutional Networks"),
as Captum's `Occlusion` computes it with a window spanning all channels.

A `window` x `window` patch slides over the input with `stride`; at each position all channels of the
patch are set to `baseline` (in normalised space: 0 is the dataset's mean colour). The position's value
is f(x) - f(x occluded), f = the target's pre-softmax logit; each pixel gets the mean over the windows
that cover it (pixels no window covers get 0; Captum divides 0 by 0 there). Positions per axis:
floor((side - window) / stride) + 1, starting at 0 (as Captum).

raw: that map, signed (positive = occluding it lowers the score); comparison: ReLU(raw). Forward-only:
1 + positions forward passes, batched (`batching.py`).
"""
from __future__ import annotations

import torch

from ..method_catalogue import METHOD_SPECS
from .base import InvalidParams, Method, MethodOutput
from .batching import batch_scores, device_of, scores_batched


def window_starts(side: int, window: int, stride: int) -> torch.Tensor:
    return torch.arange(0, side - window + 1, stride)


def coverage_matrix(starts: torch.Tensor, window: int, side: int) -> torch.Tensor:
    """positions x side float: 1 where the window starting at starts[j] covers the pixel."""
    pixels = torch.arange(side)
    return ((pixels[None] >= starts[:, None]) & (pixels[None] < starts[:, None] + window)).float()


def occlusion_map(net, x, target: int, window: int, stride: int, baseline: float, batch_size=None) -> torch.Tensor:
    """H x W float32 for one input x (1 x C x H x W)."""
    height, width = x.shape[-2:]
    ys, xs = window_starts(height, window, stride), window_starts(width, window, stride)
    positions = [(int(y), int(x_)) for y in ys for x_ in xs]

    def make_batch(start, stop):
        batch = x.repeat(stop - start, 1, 1, 1)
        for row, (y, x_) in enumerate(positions[start:stop]):
            batch[row, :, y : y + window, x_ : x_ + window] = baseline
        return batch

    clean = batch_scores(net, x, target, probabilities=False)
    occluded = scores_batched(net, make_batch, len(positions), target, probabilities=False, batch_size=batch_size)
    diffs = (clean - occluded).view(len(ys), len(xs)).cpu().double()
    rows, cols = coverage_matrix(ys, window, height).double(), coverage_matrix(xs, window, width).double()
    total = rows.T @ diffs @ cols
    count = rows.sum(0)[:, None] * cols.sum(0)[None, :]
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total)).float().to(device_of(net, x))


class Occlusion(Method):
    spec = METHOD_SPECS["occlusion"]

    def attribute(self, net, x, target, params) -> MethodOutput:
        if params["window"] > min(x.shape[-2:]):
            raise InvalidParams(f"occlusion: window {params['window']} is larger than the input {tuple(x.shape[-2:])}")
        maps = [
            occlusion_map(
                net, x[i : i + 1], int(target[i]), params["window"], params["stride"], params["baseline"],
                params["batch_size"] or None,
            )
            for i in range(x.shape[0])
        ]
        raw = torch.stack(maps)
        return MethodOutput(raw=raw, comparison=raw.clamp(min=0))
