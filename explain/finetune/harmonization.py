"""The Harmonization loss (Fel et al. 2022) and an input-gradient penalty (Ross et al. 2017), pure torch.

Harmonization: loss = CE(label smoothing 0.1) + 1e-5 * L2(weights) + lambda * H, where H compares the
model's input gradient saliency s (d logit_target / d x, mean over colour channels, signed) with the
human map h, per image: z-score each over H x W (population std as TensorFlow's reduce_std, epsilon
1e-5) then ReLU; rescale h to max(s) (max(s) is a constant: no gradient flows through it); the squared
error on a 5-level Gaussian pyramid (binomial kernel [1,4,6,4,1]/16, stride 2, TensorFlow's SAME
padding), each level's mean, summed over levels (the authors' code takes the mean of the five, i.e.
1/5 of this: `level_reduction="mean"`); a per-sample weight zeroes images without a human map (the
weighted mean over the batch divides by the batch size, as the authors do). `harmonization_loss`
keeps the L2 term for completeness; the trainer (`training.py`) leaves it out and uses AdamW's
decoupled weight decay instead (one of the two, not both; docs/finetune.md says why).

Scale of H: both maps are in z-score units and h is rescaled to max(s), so H grows with the square
of the saliency's peak z-score. On EfficientNet-Lite0 with two photos (224 px) and a smooth
Gaussian human map, H was 41 while the cross-entropy was 1.3 (the saliency's peak z-scores 10 and
13); a saliency peaking at z 30 would give about 9 times that. That is the definition, not a bug;
lambda multiplies H as defined here (sum over 5 levels), so lambda = 1 here is lambda = 5 in the
authors' convention. The trainer reports H and CE separately per step.

The saliency target: a labelled image uses its label. An unlabelled one (label -1) uses the model's
own predicted class (argmax of the same forward pass, no gradient through the choice) and never
class 0; `saliency_targets(..., unlabelled="skip")` instead gives it weight 0 in H. Either way it is
left out of the cross-entropy.

Ross et al. 2017 ("Right for the right reasons"): penalty = lambda * mean over the batch of
weight * sum over channels and pixels of (A * d sum_k log p_k / d x)^2, with A = 1 - h / max(h) (1
where no participant looked, 0 at the map's peak).

Both losses need the input gradient kept in the graph (`create_graph=True`): a detached saliency,
or one taken without create_graph, trains nothing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
UNLABELLED_RULES = ("predicted", "skip")


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


def saliency_targets(logits: torch.Tensor, labels: torch.Tensor, *, unlabelled: str = "predicted") -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, usable): the class whose logit each image's saliency explains, and a B float mask
    of the images H may use. Labelled (>= 0): the label. Unlabelled (< 0): "predicted" takes the
    argmax of `logits` (usable); "skip" keeps the argmax only as a placeholder and marks it unusable."""
    if unlabelled not in UNLABELLED_RULES:
        raise ValueError(f"unlabelled must be one of {', '.join(UNLABELLED_RULES)}, got {unlabelled!r}")
    labelled = labels >= 0
    targets = torch.where(labelled, labels, logits.detach().argmax(dim=1))
    usable = labelled if unlabelled == "skip" else torch.ones_like(labelled)
    return targets, usable.to(logits.dtype)


def input_gradient_saliency(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                            unlabelled: str = "predicted") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, saliency, usable): saliency = d logit[target] / d image, averaged over channels
    (B x H x W, signed, input pixels), kept in the graph (create_graph) so the alignment term trains
    the model; targets and `usable` as `saliency_targets`."""
    images = images.detach().requires_grad_(True)
    logits = model(images)
    targets, usable = saliency_targets(logits, labels, unlabelled=unlabelled)
    picked = logits.gather(1, targets[:, None]).sum()
    (grad,) = torch.autograd.grad(picked, images, create_graph=True)
    return logits, grad.mean(dim=1), usable


def log_probability_gradients(model: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, d sum_k log softmax_k / d image), B x C x H x W, kept in the graph (Ross et al. 2017)."""
    images = images.detach().requires_grad_(True)
    logits = model(images)
    (grad,) = torch.autograd.grad(full_precision(logits).log_softmax(dim=1).sum(), images, create_graph=True)
    return logits, grad


def outside_gradient_penalty(grads: torch.Tensor, human: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Ross et al.'s right-reasons term: mean over the batch of weight * sum((A * grads)^2) with
    A = 1 - h / max(h) per image (an all-zero map gives A = 1: weight it 0). grads: B x C x H x W;
    human: B x H x W; weights: B."""
    top = human.amax(dim=(-2, -1), keepdim=True)
    outside = 1.0 - human / torch.where(top > 0, top, torch.ones_like(top))
    per_image = ((outside[:, None] * grads) ** 2).sum(dim=(1, 2, 3))
    return (per_image * weights).mean()


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
    ce = labelled_cross_entropy(logits, labels, label_smoothing)
    l2 = sum(((p**2).sum() / 2 for p in parameters), torch.zeros((), device=logits.device))
    align = alignment_term(saliency, human, weights.to(saliency), levels=levels, level_reduction=level_reduction)
    return {"loss": ce + weight_decay * l2 + alignment_weight * align, "cross_entropy": ce, "weights_l2": l2, "alignment": align}


def labelled_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.1) -> torch.Tensor:
    """Mean cross-entropy over the labelled rows (labels >= 0); 0 (in the graph) when none is."""
    labelled = labels >= 0
    if not labelled.any():
        return logits.sum() * 0
    return F.cross_entropy(full_precision(logits[labelled]), labels[labelled], label_smoothing=label_smoothing)


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 (autocast) -> float32; float32 and float64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor
