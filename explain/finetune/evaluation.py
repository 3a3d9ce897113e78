"""Measure a model on held-out images: agreement of its maps with the human maps, and top-1 accuracy.

Per held-out image with a human map, three maps of the target class (the label; the predicted class
where there is none), all at the model's input resolution, each scored against the human map
(resized the same way) with Spearman and PCC:

- `gradient_positive`: max(mean over colour channels of d logit / d x, 0), the positive part of the
  signed input gradient. The Harmonization loss trains this quantity (it standardises the signed
  channel-mean gradient and keeps what is above its mean).
- `gradient_abs`: max over channels of |d logit / d x|, the platform's comparison map for the gradient
  method. The loss does not train it; it can fall while `gradient_positive` rises.
- `gradcam`: ReLU of Grad-CAM on the model's `features` layer, upsampled bilinearly (when the model
  has no `features` layer the map is absent and the result says so).

Accuracy: top-1 over the labelled held-out images, per condition and over all.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..methods.base import InvalidParams
from ..methods.batching import fast_layout
from ..methods.gradcam import GradCAM
from ..pipeline import map_resize
from .agreement import pcc_rows, spearman_rows

MAPS = {
    "gradient_positive": "max(mean over channels of d logit/d x, 0): the positive part of the signed input gradient",
    "gradient_abs": "max over channels of |d logit/d x|: the platform's comparison map for the gradient method",
    "gradcam": "ReLU(Grad-CAM) on the features layer, upsampled bilinearly",
}
METRICS = ("spearman", "pcc")


def gradient_maps(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """({"gradient_positive", "gradient_abs"}: B x H x W, logits, targets) from one forward and one
    backward pass; the target is the label, or the predicted class where the label is < 0."""
    with torch.enable_grad():
        leaf = fast_layout(images.detach()).requires_grad_(True)
        logits = net(leaf)
        targets = torch.where(labels >= 0, labels, logits.detach().argmax(dim=1))
        (grads,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), leaf)
    maps = {"gradient_positive": grads.mean(dim=1).clamp(min=0), "gradient_abs": grads.abs().amax(dim=1)}
    return maps, logits.detach(), targets


def gradcam_map(net: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    """ReLU(Grad-CAM) at the input's size (B x H x W, float64, CPU), None without a `features` layer."""
    try:
        output = GradCAM().attribute(net, fast_layout(images), targets, {"layer": "features"})
    except InvalidParams:
        return None
    return map_resize(output.comparison, *images.shape[-2:])


def evaluate(net: nn.Module, data: Dataset, indices: list[int], *, device: torch.device, batch_size: int,
             progress: Callable[[int], None] | None = None) -> dict:
    """Per-image arrays over data[indices] (in that order), net in eval mode:
    {"<map>": {"spearman": n-array, "pcc": n-array}} (NaN where the image has no human map or a map is
    constant; a map absent from the model is left out), "correct": n-array (1/0, NaN unlabelled),
    "predicted": n int array, "ceilings": {"spearman", "pcc"}: n-arrays of the images' human ceilings
    (NaN where none or no map)."""
    net.eval()
    scores = {name: {metric: np.full(len(indices), np.nan) for metric in METRICS} for name in MAPS}
    ceilings = {metric: np.full(len(indices), np.nan) for metric in METRICS}
    correct = np.full(len(indices), np.nan)
    predicted = np.zeros(len(indices), dtype=np.int64)
    has_gradcam, start = True, 0
    loader = DataLoader(data, batch_size=batch_size, sampler=list(indices))
    for batch in loader:
        images, labels = batch["image"].to(device), batch["label"].to(device)
        maps, logits, targets = gradient_maps(net, images, labels)
        cam = gradcam_map(net, images, targets) if has_gradcam else None
        has_gradcam = cam is not None
        if cam is not None:
            maps["gradcam"] = cam
        rows = slice(start, start + len(images))
        mapped = batch["has_map"].numpy() > 0
        human = batch["human_map"][:, 0].double().numpy()
        for metric in METRICS:
            ceilings[metric][rows] = np.where(mapped, batch[f"ceiling_{metric}"].double().numpy(), np.nan)
        for name, values in maps.items():
            values = values.detach().double().cpu().numpy()
            for metric, function in (("spearman", spearman_rows), ("pcc", pcc_rows)):
                scores[name][metric][rows] = np.where(mapped, function(values, human), np.nan)
        top1 = logits.argmax(dim=1).cpu()
        predicted[rows] = top1.numpy()
        labelled = batch["label"] >= 0
        correct[rows] = np.where(labelled.numpy(), (top1 == batch["label"]).double().numpy(), np.nan)
        start += len(images)
        if progress:
            progress(start)
    if not has_gradcam:
        scores.pop("gradcam")
    return {**scores, "correct": correct, "predicted": predicted, "ceilings": ceilings}
