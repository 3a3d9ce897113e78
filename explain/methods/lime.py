"""LIME for images (Ribeiro, Singh and Guestrin, KDD 2016, "Why Should I Trust You?"), as
`lime.lime_image.LimeImageExplainer.explain_instance` computes it with its defaults.

1. Superpixels: scikit-image quickshift (kernel_size 4, max_dist 200, ratio 0.2, rng 42) on
   the input min-max rescaled to [0, 1] (the method sees the normalised tensor; rescaling is affine,
   so colour distances keep their proportions). lime passes `random_seed` to quickshift, which
   scikit-image >= 0.19 no longer accepts; lime's wrapper drops it, so lime's quickshift runs with
   scikit-image's default rng=42: the `quickshift_seed` default.
2. Samples: z = RandomState(seed).randint(0, 2, samples x segments), first row all ones (the image).
   A hidden superpixel is filled with its own mean colour (lime's hide_color=None).
3. Labels: the target's softmax probability for every sample (forward-only, batched by `batching.py`).
4. Weights: sqrt(exp(-d^2 / width^2)), d = cosine distance of z to all-ones, width 0.25.
5. Weighted ridge (alpha 1, with intercept; lime's 'auto' feature selection keeps every superpixel
   when there are more than 6, and the ridge fit does not depend on their order).

raw: each pixel gets its superpixel's weight (signed); comparison: ReLU(raw). At input resolution.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import quickshift

from ..method_catalogue import METHOD_SPECS
from .base import Method, MethodOutput
from .batching import scores_batched


def unit_image(x: torch.Tensor) -> np.ndarray:
    """C x H x W tensor -> H x W x C float64 in [0, 1] (global min-max; a constant image gives 0)."""
    image = x.detach().double().cpu().permute(1, 2, 0).numpy()
    span = image.max() - image.min()
    return (image - image.min()) / span if span > 0 else np.zeros_like(image)


def lime_segments(image_hwc: np.ndarray, kernel_size: float, max_dist: float, ratio: float, seed: int) -> np.ndarray:
    """H x W int64 labels 0..n-1 (quickshift, as lime's default SegmentationAlgorithm)."""
    labels = quickshift(image_hwc, kernel_size=kernel_size, max_dist=max_dist, ratio=ratio, rng=seed)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def lime_samples(segment_count: int, samples: int, seed: int) -> np.ndarray:
    """samples x segments {0, 1} (1 = superpixel shown), first row all ones, as lime draws them."""
    data = np.random.RandomState(seed).randint(0, 2, samples * segment_count).reshape((samples, segment_count))
    data[0, :] = 1
    return data


def segment_means(x: torch.Tensor, segments: torch.Tensor, count: int) -> torch.Tensor:
    """C x H x W: every pixel replaced by its segment's mean colour."""
    channels = x.shape[0]
    flat = segments.view(-1)
    sums = torch.zeros(channels, count, dtype=torch.float64, device=x.device)
    sums.index_add_(1, flat, x.reshape(channels, -1).double())
    sizes = torch.bincount(flat, minlength=count).double()
    return (sums / sizes)[:, flat].view_as(x).to(x.dtype)


def weighted_ridge(data: np.ndarray, labels: np.ndarray, weights: np.ndarray, alpha: float = 1.0):
    """(coef, intercept) of sklearn Ridge(alpha, fit_intercept=True).fit(data, labels, sample_weight=weights)."""
    data, labels, weights = data.astype(np.float64), labels.astype(np.float64), weights.astype(np.float64)
    total = weights.sum()
    data_mean, label_mean = weights @ data / total, weights @ labels / total
    centred = data - data_mean
    gram = centred.T @ (centred * weights[:, None]) + alpha * np.eye(data.shape[1])
    coef = np.linalg.solve(gram, centred.T @ (weights * (labels - label_mean)))
    return coef, label_mean - data_mean @ coef


def lime_weights(net, x, target: int, segments: np.ndarray, params, batch_size=None) -> tuple[np.ndarray, float]:
    """(per-segment weights, intercept) for one input x (1 x C x H x W) and its segmentation."""
    count = int(segments.max()) + 1
    data = lime_samples(count, params["samples"], params["seed"])
    labels_t = torch.from_numpy(segments).to(x.device)
    fudged = segment_means(x[0], labels_t, count)
    shown = torch.from_numpy(data.astype(bool)).to(x.device)

    def make_batch(start, stop):
        keep = shown[start:stop][:, labels_t].unsqueeze(1)  # b x 1 x H x W
        return torch.where(keep, x, fudged.unsqueeze(0))

    labels = scores_batched(net, make_batch, len(data), target, batch_size=batch_size).double().cpu().numpy()
    distances = 1.0 - np.sqrt(data.sum(axis=1) / count)  # cosine distance to the all-ones row
    kernel = np.sqrt(np.exp(-(distances**2) / params["kernel_width"] ** 2))
    return weighted_ridge(data, labels, kernel)


class LIME(Method):
    spec = METHOD_SPECS["lime"]

    def attribute(self, net, x, target, params) -> MethodOutput:
        maps = []
        for i in range(x.shape[0]):
            image = unit_image(x[i])
            segments = lime_segments(image, params["kernel_size"], params["max_dist"], params["ratio"], params["quickshift_seed"])
            coef, _ = lime_weights(net, x[i : i + 1], int(target[i]), segments, params, params["batch_size"] or None)
            maps.append(torch.from_numpy(coef[segments]).float())
        raw = torch.stack(maps).to(x.device)
        return MethodOutput(raw=raw, comparison=raw.clamp(min=0))
