"""The Harmonization loss (Fel et al. 2022) as pure torch functions (REFERENCE.md section 5).

loss = CE(label smoothing 0.1) + 1e-5 * L2(weights) + 1.0 * H, where H compares the model's input
gradient saliency s with the human map h, per image: z-score each over H x W (population std as TensorFlow's
reduce_std, epsilon 1e-5) then ReLU; rescale h to max(s) (max(s) is a constant: no gradient flows through it); the
squared error on a 5-level Gaussian pyramid (binomial kernel [1,4,6,4,1]/16, stride 2, TensorFlow's
SAME padding), each level's mean, summed over levels as REFERENCE.md says (the authors' code takes
the mean of the five, i.e. 1/5 of this: `level_reduction="mean"`); a per-sample weight zeroes images
without a human map (the weighted mean over the batch divides by the batch size, as the authors do).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def standardize_cut(maps: torch.Tensor, epsilon: float = 1e-5) -> torch.Tensor:
    """B x H x W -> ReLU((m - mean) / (std + eps)), statistics per image over H x W."""
    mean = maps.mean(dim=(-2, -1), keepdim=True)
    std = maps.std(dim=(-2, -1), keepdim=True, correction=0)
    return torch.relu((maps - mean) / (std + epsilon))


def _same_pad(size: int, kernel: int = 5, stride: int = 2) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def downsample(maps: torch.Tensor) -> torch.Tensor:
    """B x 1 x H x W blurred with the 5 x 5 binomial kernel and subsampled by 2 (TF SAME padding)."""
    kernel = torch.outer(BINOMIAL, BINOMIAL).to(maps)[None, None]
    top, bottom = _same_pad(maps.shape[-2])
    left, right = _same_pad(maps.shape[-1])
    return F.conv2d(F.pad(maps, (left, right, top, bottom)), kernel, stride=2)


def pyramid(maps: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """[B x 1 x H x W, then `levels - 1` downsampled versions]."""
    out = [maps]
    for _ in range(levels - 1):
        out.append(downsample(out[-1]))
    return out


def pyramidal_mse(saliency: torch.Tensor, human: torch.Tensor, weights: torch.Tensor, *, levels: int = 5,
                  level_reduction: str = "sum") -> torch.Tensor:
    """Per level: mean over (batch, pixels) of weight * (s - h)^2; then summed (or averaged) over levels.
    saliency, human: B x H x W; weights: B."""
    s_levels, h_levels = pyramid(saliency[:, None], levels), pyramid(human[:, None], levels)
    per_level = torch.stack([((s - h) ** 2 * weights[:, None, None, None]).mean() for s, h in zip(s_levels, h_levels)])
    return per_level.sum() if level_reduction == "sum" else per_level.mean()


def alignment_term(saliency: torch.Tensor, human: torch.Tensor, weights: torch.Tensor, *, levels: int = 5,
                   level_reduction: str = "sum") -> torch.Tensor:
    """H: standardise-and-cut both maps, rescale the human map to the saliency's max (no gradient
    through that max), pyramidal MSE weighted per sample."""
    s = standardize_cut(saliency)
    h = standardize_cut(human)
    h_max = h.amax(dim=(-2, -1), keepdim=True) + 1e-6
    s_max = s.detach().amax(dim=(-2, -1), keepdim=True) + 1e-6
    return pyramidal_mse(s, h / h_max * s_max, weights, levels=levels, level_reduction=level_reduction)


def input_gradient_saliency(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, saliency): saliency = d logit[label] / d image, averaged over channels (B x H x W),
    kept in the graph (create_graph) so the alignment term trains the model."""
    images = images.detach().requires_grad_(True)
    logits = model(images)
    picked = logits.gather(1, labels.clamp(min=0)[:, None]).sum()
    (grad,) = torch.autograd.grad(picked, images, create_graph=True)
    return logits, grad.mean(dim=1)


def harmonization_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    saliency: torch.Tensor,
    human: torch.Tensor,
    weights: torch.Tensor,
    parameters=(),
    *,
    label_smoothing: float = 0.1,
    weight_decay: float = 1e-5,
    alignment_weight: float = 1.0,
    levels: int = 5,
    level_reduction: str = "sum",
) -> dict[str, torch.Tensor]:
    """{"loss", "cross_entropy", "weights_l2", "alignment"}. `parameters`: the weights to decay
    (the authors leave out normalisation layers); L2 is sum(w^2) / 2 as TensorFlow's l2_loss.
    Labels < 0 (no label) are left out of the cross-entropy."""
    labelled = labels >= 0
    ce = F.cross_entropy(logits[labelled], labels[labelled], label_smoothing=label_smoothing) if labelled.any() else logits.sum() * 0
    l2 = sum(((p**2).sum() / 2 for p in parameters), torch.zeros((), device=logits.device))
    align = alignment_term(saliency, human, weights.to(saliency), levels=levels, level_reduction=level_reduction)
    return {"loss": ce + weight_decay * l2 + alignment_weight * align, "cross_entropy": ce, "weights_l2": l2, "alignment": align}
