"""Loading a catalogued classifier (`model_catalogue`) once per process, for explaining.

`model_load(key)` builds the network its spec describes, split into `features` (the conventional last
conv map, the default Grad-CAM/FEM layer) and `head` (features -> logits), and returns a `ZooModel`
with its input size, normalisation, class names and weights hash. Loading happens lazily, inside the
process that runs the job (CUDA is never touched in a prefork parent), and is cached for the life of
that process; the cached network is in eval mode with no trainable parameter (`model_trainable` gives
a fresh trainable copy instead).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch
from torch import nn

from .model_catalogue import (  # noqa: F401  (the catalogue's names are the zoo's too)
    DEFAULT_MODEL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    REGISTRY,
    InvalidModelConfig,
    ModelSpec,
    ModelUnavailable,
    UnknownModel,
    _on_change,
    model_keys,
    model_options,
    model_spec_get,
    model_unavailable,
    model_weights_hash,
    user_models_register,
)
from .split_net import SplitNet


@dataclass
class ZooModel:
    key: str
    net: SplitNet
    input_size: tuple[int, int]  # (height, width) the network sees
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...]
    weights_hash: str  # sha256 of the weights file, first 16 hex digits
    device: torch.device
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def device_pick() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def network_build(spec: ModelSpec, *, for_training: bool = False) -> nn.Module:
    """A fresh network for the spec, on the CPU, with its weights loaded (ModelUnavailable names what
    is missing). for_training: as it was trained (EfficientNet-Lite0's BatchNorm not folded)."""
    path = spec.weights_path()  # first: names the missing package or file
    if spec.source == "efficientnet_lite0":
        from .efficientnet_lite0 import efficientnet_lite0_build

        return efficientnet_lite0_build(path, simplified=not for_training)
    if spec.source == "torchvision":
        from .torchvision_models import torchvision_build

        return torchvision_build(spec.config["torchvision"], path)
    if spec.source == "user":
        from .user_models import user_build

        return user_build(spec.config, path)
    raise ModelUnavailable(f"model {spec.key!r} comes from {spec.source!r}, which this worker cannot build")


_cache: dict[tuple[str, str], ZooModel] = {}
_lock = threading.Lock()


def _forget(keys: list[str]) -> None:
    with _lock:
        for cached in [k for k in _cache if k[0] in keys]:
            del _cache[cached]


_on_change.append(_forget)


def model_load(key: str, device: torch.device | None = None) -> ZooModel:
    """The model in eval mode on `device` (CUDA when available), loaded once per process."""
    spec = model_spec_get(key)
    device = device or device_pick()
    with _lock:
        cached = _cache.get((key, str(device)))
        if cached is not None:
            return cached
        net = network_build(spec).eval().to(device)
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        model = ZooModel(
            key=key,
            net=net,
            input_size=spec.input_size,
            mean=spec.mean,
            std=spec.std,
            class_names=tuple(spec.class_names()),
            weights_hash=model_weights_hash(key),
            device=device,
        )
        _cache[(key, str(device))] = model
        return model


def model_trainable(key: str, device: torch.device | None = None) -> ZooModel:
    """A fresh copy of the model to train: built anew from its weights file (never the cached
    explanation model, which stays as it was), with BatchNorm kept (not folded), every parameter
    requiring grad, in train mode, on `device` (default the CPU). Same input size, normalisation,
    class names and weights hash as `model_load(key)`; `features`/`head` as there, so Grad-CAM runs on it."""
    spec = model_spec_get(key)
    device = device or torch.device("cpu")
    net = network_build(spec, for_training=True).train().to(device)
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    return ZooModel(key=key, net=net, input_size=spec.input_size, mean=spec.mean, std=spec.std,
                    class_names=tuple(spec.class_names()), weights_hash=model_weights_hash(key), device=device)
