"""One explanation from image to maps, pure torch/numpy (no Django).

The model sees the whole stimulus resized to its input size (no crop); maps come back at the
stimulus resolution (bilinear, antialiased when shrinking).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from annotations.images import image_rgb

from .methods import Method, MethodOutput, method_get
from .methods.batching import batch_size_for
from .zoo import ZooModel


class InvalidTarget(ValueError):
    """The target class is outside the model's classes."""


@dataclass
class Explanation:
    raw: np.ndarray  # H x W float32, stimulus pixels, raw (signed where the method is signed)
    comparison: np.ndarray  # H x W float32 >= 0, stimulus pixels
    target: int
    predicted: int
    predicted_probability: float
    target_probability: float
    method: str
    method_version: str
    params: dict[str, Any]
    model: str
    weights_hash: str
    device: str
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)


def image_to_input(image: Image.Image, model: ZooModel) -> torch.Tensor:
    """1 x 3 x h x w float32 on the model's device: 8-bit RGB (`image_rgb`), resized whole (bilinear,
    antialiased), scaled to [0, 1], normalised with the model's mean and std."""
    height, width = model.input_size
    resized = image_rgb(image).resize((width, height), Image.BILINEAR)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean = torch.tensor(model.mean).view(3, 1, 1)
    std = torch.tensor(model.std).view(3, 1, 1)
    return ((tensor - mean) / std).unsqueeze(0).to(model.device)


def map_resize(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """B x h x w -> B x H x W, bilinear, antialiased when shrinking, float64 on the CPU."""
    maps = maps.detach().to("cpu", torch.float64).unsqueeze(1)
    shrinking = height < maps.shape[-2] or width < maps.shape[-1]
    out = F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking)
    return out.squeeze(1)


def target_check(target: int, model: ZooModel) -> int:
    if not 0 <= int(target) < model.num_classes:
        raise InvalidTarget(f"target class {target} is outside the model's classes 0..{model.num_classes - 1}")
    return int(target)


def explain_image(
    model: ZooModel,
    image: Image.Image,
    method_key: str,
    *,
    target: int | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> Explanation:
    """Explain `image` for `target` (the top prediction when None) with the method `method_key`."""
    method = method_get(method_key)
    resolved = method.params_resolve(params)
    target = None if target is None else target_check(target, model)
    return _explain_batch(model, method, resolved, [image], [target], seed)[0]


def explain_images(
    model: ZooModel,
    images: Sequence[Image.Image],
    method_key: str,
    *,
    targets: Sequence[int | None] | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[Explanation]:
    """`explain_image` for each image (same model, method and parameters), in one go.

    targets: one per image; None (or a None entry) is that image's own top prediction. Every target is
    checked before any work (InvalidTarget). Each explanation has its own target, predicted class,
    probabilities and maps at its image's resolution, equal to `explain_image`'s up to float rounding.

    Methods that are one pass over independent rows (`Method.batches_across_inputs`: gradient, guided
    backprop, Grad-CAM, Guided Grad-CAM, FEM) run the images `batch_size_for(device, backward=True)`
    at a time (4 on CPU, 64 on CUDA)
    through one clean forward and one attribution pass; `seconds` is each image's share of its
    batch. The others (whose own passes already fill the batch) run image by image."""
    method = method_get(method_key)
    resolved = method.params_resolve(params)
    targets = [None] * len(images) if targets is None else list(targets)
    if len(targets) != len(images):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    targets = [None if target is None else target_check(target, model) for target in targets]
    if not method.batches_across_inputs:
        return [
            explain_image(model, image, method_key, target=target, params=params, seed=seed)
            for image, target in zip(images, targets)
        ]
    size = batch_size_for(model.device, backward=True)
    explanations: list[Explanation] = []
    for start in range(0, len(images), size):
        rows = slice(start, start + size)
        explanations += _explain_batch(model, method, resolved, images[rows], targets[rows], seed)
    return explanations


def _explain_batch(model: ZooModel, method: Method, resolved: dict, images, targets, seed: int) -> list[Explanation]:
    """One clean forward and one `method.attribute` over len(images) rows (targets already checked)."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    x = torch.cat([image_to_input(image, model) for image in images])
    probabilities = None
    if any(target is None for target in targets):
        probabilities = _probabilities(model, x)
        predicted = probabilities.argmax(dim=1).tolist()
        targets = [top if target is None else target for top, target in zip(predicted, targets)]
    output = method.attribute(model.net, x, torch.tensor(targets, device=model.device), resolved)
    probabilities = _probabilities(model, x, output) if probabilities is None else probabilities
    maps = [_maps_at(output, row, image) for row, image in enumerate(images)]
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / len(images)
    return [
        _explanation(model, method, resolved, raw, comparison, target, probabilities[row], seconds, _row_meta(output, row))
        for row, ((raw, comparison), target) in enumerate(zip(maps, targets))
    ]


def _row_meta(output: MethodOutput, row: int) -> dict[str, Any]:
    """What is recorded with row `row`'s map: the method's facts of the batch, then its own."""
    return {**output.meta, **(output.row_meta[row] if output.row_meta is not None else {})}


def _probabilities(model: ZooModel, x: torch.Tensor, output: MethodOutput | None = None) -> torch.Tensor:
    """B x classes softmax of the clean input: from the logits the method computed on it anyway
    (`MethodOutput.logits`, the single-pass methods), else from a forward pass of its own. When every
    target is known before the method runs (a labelled stimulus) that saves the pass: a third of the
    time of a gradient map on this CPU."""
    if output is not None and output.logits is not None:
        return output.logits.detach().float().softmax(dim=1)
    with torch.no_grad():
        return model.net(x).softmax(dim=1)


def _maps_at(output: MethodOutput, row: int, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Row `row` of the method's raw and comparison maps at the image's resolution, float32."""
    height, width = image.height, image.width
    raw = map_resize(output.raw[row : row + 1], height, width)[0].numpy().astype(np.float32)
    comparison = map_resize(output.comparison[row : row + 1], height, width)[0].clamp(min=0).numpy().astype(np.float32)
    return raw, comparison


def _explanation(model, method, resolved, raw, comparison, target, probabilities, seconds, meta) -> Explanation:
    predicted = int(probabilities.argmax())
    return Explanation(
        raw=raw,
        comparison=comparison,
        target=target,
        predicted=predicted,
        predicted_probability=float(probabilities[predicted]),
        target_probability=float(probabilities[target]),
        method=method.key,
        method_version=method.version,
        params=resolved,
        model=model.key,
        weights_hash=model.weights_hash,
        device=str(model.device),
        seconds=seconds,
        meta=dict(meta),
    )
