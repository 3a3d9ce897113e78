"""Insertion and deletion (Petsiuk et al., BMVC 2018, the RISE paper; `eclique/RISE` evaluation.py,
CausalMetric), pure torch, for any saliency map (docs/explain-perturbation.md).

At the model's input resolution, pixels are ordered by decreasing saliency (stable sort: ties keep
row-major order). Deletion starts from the image and replaces `step` pixels at a time (all channels)
with 0 in normalised space (the mean colour); insertion starts from the image blurred (Gaussian kernel
11, sigma 5, zero padding, the authors' `gkern`) and puts the image's pixels back. After each step,
and before the first, the score is the target's softmax probability: n = ceil(H W / step) steps,
n + 1 scores. AUC = (sum(s) - s_0 / 2 - s_n / 2) / n (trapezoid over the normalised curve).
Default step = W (224 pixels a step at 224 x 224: 224 steps). All 2 (n + 1) forwards are batched
(`methods/batching.py`); each batch's inputs are built from the rank of every pixel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import nn

from .methods.batching import device_of, scores_batched


@dataclass
class CausalCurves:
    insertion: np.ndarray  # n + 1 target probabilities, float64
    deletion: np.ndarray
    step: int


def blur_kernel(size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """3 x 3 x size x size: the authors' gkern (scipy gaussian_filter of a delta, reflect edges) per channel."""
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1
    k = torch.from_numpy(gaussian_filter(delta, sigma).astype("float32"))
    kernel = torch.zeros(3, 3, size, size)
    for channel in range(3):
        kernel[channel, channel] = k
    return kernel


def blurred(x: torch.Tensor, size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    return F.conv2d(x, blur_kernel(size, sigma).to(x.device, x.dtype), padding=size // 2)


def auc(scores: np.ndarray) -> float:
    return float((scores.sum() - scores[0] / 2 - scores[-1] / 2) / (len(scores) - 1))


def insertion_deletion(
    net: nn.Module,
    x: torch.Tensor,
    saliency_hw: torch.Tensor | np.ndarray,
    target: int,
    *,
    step: int | None = None,
    blur_size: int = 11,
    blur_sigma: float = 5.0,
    batch_size: int | None = None,
) -> tuple[float, float, CausalCurves]:
    """(insertion AUC, deletion AUC, curves) for x (1 x 3 x H x W, normalised) and a saliency map,
    resized bilinearly to H x W when it has another size."""
    height, width = x.shape[-2:]
    saliency = torch.as_tensor(np.asarray(saliency_hw, dtype=np.float64) if isinstance(saliency_hw, np.ndarray) else saliency_hw)
    saliency = saliency.detach().to("cpu", torch.float64)
    if saliency.shape != (height, width):
        saliency = F.interpolate(saliency[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    step = step or width
    pixels = height * width
    steps = math.ceil(pixels / step)
    order = torch.argsort(-saliency.reshape(-1), stable=True)
    rank = torch.empty(pixels, dtype=torch.long)
    rank[order] = torch.arange(pixels)
    rank = rank.view(1, 1, height, width).to(device_of(net, x))
    counts = torch.arange(steps + 1, device=rank.device) * step  # pixels moved before each score

    def game(start_image, finish_image):
        def make_batch(first, last):
            moved = rank < counts[first:last].view(-1, 1, 1, 1)
            return torch.where(moved, finish_image, start_image)

        return scores_batched(net, make_batch, steps + 1, target, batch_size=batch_size).double().cpu().numpy()

    substrate = blurred(x, blur_size, blur_sigma)
    insertion = game(substrate, x)
    deletion = game(x, torch.zeros_like(x))
    return auc(insertion), auc(deletion), CausalCurves(insertion=insertion, deletion=deletion, step=step)
