"""Registry entries beyond EfficientNet-Lite0: the seeds' torchvision models and researchers' models.

torchvision (`resnet50`, `vgg16`, `inception_v3`): used when the package imports and the ImageNet
weights file is on disk under `$TORCH_HOME/hub/checkpoints/` (torchvision's own cache, so a file
torchvision downloaded elsewhere works when copied there). Nothing is downloaded at run time.

User models: the environment variable `EXPLAIN_MODELS_FILE` names a YAML or JSON file mapping a key
to a model (see docs/explain.md):

    my_net:
      torchscript: /models/my_net.pt            # a torch.jit.save'd module, or:
      state_dict: /models/my_net.pth            # weights for ...
      architecture: mypackage.nets:build_my_net # ... a callable returning the nn.Module (import path)
      architecture_kwargs: {num_classes: 3}
      input_size: [224, 224]                     # height, width
      mean: [0.485, 0.456, 0.406]
      std: [0.229, 0.224, 0.225]
      classes: [cat, dog, bird]                  # or a path to a text file, one name a line, or "imagenet"
      features: layer4                           # dotted name of the last conv map (Grad-CAM, FEM)
"""
from __future__ import annotations

import importlib
import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .imagenet import imagenet_classes
from .zoo import IMAGENET_MEAN, IMAGENET_STD, ModelUnavailable, RegistryEntry, SplitNet

ENV_VAR = "EXPLAIN_MODELS_FILE"

# torchvision's canonical ImageNet-1k (V1) weight files
TORCHVISION_WEIGHTS = {
    "resnet50": "resnet50-0676ba61.pth",
    "vgg16": "vgg16-397923af.pth",
    "inception_v3": "inception_v3_google-0cc3c7bd.pth",
}


class InvalidModelConfig(ValueError):
    """The user models file is malformed; the message names the entry and the problem."""


def _torchvision_weights(key: str) -> Path:
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # ImportError, or a torchvision built for another torch
        raise ModelUnavailable(
            f"model {key!r} needs the package torchvision (matching torch {torch.__version__}), which does not "
            f"import here ({exc.__class__.__name__}: {exc}); and its weights file at "
            f"{Path(torch.hub.get_dir()) / 'checkpoints' / TORCHVISION_WEIGHTS[key]}"
        ) from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_WEIGHTS[key]
    if not path.exists():
        raise ModelUnavailable(f"model {key!r} needs its weights file at {path} (set TORCH_HOME to move it)")
    return path


def _torchvision_build(key: str) -> tuple[SplitNet, Path]:
    path = _torchvision_weights(key)  # first: names the missing package or file
    from torchvision import models

    if key == "resnet50":
        net = models.resnet50(weights=None)
    elif key == "vgg16":
        net = models.vgg16(weights=None)
    else:
        net = models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return _torchvision_split(key, net), path


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class _InceptionFeatures(nn.Module):
    """Inception-v3 up to Mixed_7c (2048 x 8 x 8 at 299 px), with torchvision's input transform."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.names = [name for name, _ in net.named_children() if name not in ("AuxLogits", "avgpool", "dropout", "fc")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.net._transform_input(x)
        for name in self.names:
            module = getattr(self.net, name)
            x = module(x)
        return x


def _torchvision_split(key: str, net: nn.Module) -> SplitNet:
    if key == "resnet50":
        children = dict(net.named_children())
        features = nn.Sequential(*[module for name, module in children.items() if name not in ("avgpool", "fc")])
        return SplitNet(features, nn.Sequential(net.avgpool, _Flatten(), net.fc))
    if key == "vgg16":  # last conv map: the ReLU after conv5_3 (before the last max pool)
        return SplitNet(net.features[:30], nn.Sequential(net.features[30], net.avgpool, _Flatten(), net.classifier))
    return SplitNet(_InceptionFeatures(net), nn.Sequential(net.avgpool, net.dropout, _Flatten(), net.fc))


def torchvision_entries() -> dict[str, RegistryEntry]:
    return {
        key: RegistryEntry(
            key=key,
            description=f"torchvision {key}, ImageNet-1k; needs torchvision and the weights file {filename}",
            build=partial(_torchvision_build, key),
            input_size=(299, 299) if key == "inception_v3" else (224, 224),
            weights_path=partial(_torchvision_weights, key),
        )
        for key, filename in TORCHVISION_WEIGHTS.items()
    }


# --- user models ------------------------------------------------------------------------------


class UserNet(nn.Module):
    """A researcher's model: logits = model(x). `features` names its last conv map when given (the
    same module object, registered twice, so Grad-CAM hooks see it); absent otherwise."""

    def __init__(self, model: nn.Module, features: str | None):
        super().__init__()
        self.model = model
        if features:
            try:
                self.features = model.get_submodule(features)
            except AttributeError:
                raise ModelUnavailable(f"the model has no layer {features!r} to use as features") from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _import(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        module_name, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelUnavailable(f"cannot import the architecture {path!r} ({exc.__class__.__name__}: {exc})") from None


def _user_build(spec: dict) -> tuple[nn.Module, Path]:
    if "torchscript" in spec:
        path = Path(spec["torchscript"])
        _exists(path)
        model = torch.jit.load(str(path), map_location="cpu")
    else:
        path = Path(spec["state_dict"])
        _exists(path)
        model = _import(spec["architecture"])(**(spec.get("architecture_kwargs") or {}))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return UserNet(model, spec.get("features")), path


def _exists(path: Path) -> Path:
    if not path.exists():
        raise ModelUnavailable(f"the weights file {path} does not exist")
    return path


def _user_classes(spec: dict, key: str) -> tuple[str, ...]:
    classes = spec["classes"]
    if classes == "imagenet":
        return imagenet_classes()
    if isinstance(classes, str):
        lines = Path(classes).read_text(encoding="utf-8").splitlines()
        return tuple(line.strip() for line in lines if line.strip())
    return tuple(str(name) for name in classes)


def _triple(value: Any, name: str, key: str) -> tuple[float, float, float]:
    if not (isinstance(value, (list, tuple)) and len(value) == 3):
        raise InvalidModelConfig(f"model {key!r}: {name} must be 3 numbers (one per RGB channel)")
    return tuple(float(v) for v in value)


def user_entry(key: str, spec: dict) -> RegistryEntry:
    """A registry entry from one entry of the user models file; InvalidModelConfig names the problem."""
    known = {"torchscript", "state_dict", "architecture", "architecture_kwargs", "input_size", "mean", "std",
             "classes", "features", "description"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise InvalidModelConfig(f"model {key!r}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    if ("torchscript" in spec) == ("state_dict" in spec):
        raise InvalidModelConfig(f"model {key!r}: give exactly one of torchscript or state_dict")
    if "state_dict" in spec and "architecture" not in spec:
        raise InvalidModelConfig(f"model {key!r}: a state_dict needs architecture (an import path 'module:callable')")
    if "classes" not in spec:
        raise InvalidModelConfig(f"model {key!r}: classes is required (a list, a text file path, or 'imagenet')")
    size = spec.get("input_size", [224, 224])
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(int(v) > 0 for v in size)):
        raise InvalidModelConfig(f"model {key!r}: input_size must be [height, width]")
    path = Path(spec.get("torchscript") or spec["state_dict"])
    return RegistryEntry(
        key=key,
        description=spec.get("description") or f"user model from {path.name}",
        build=partial(_user_build, dict(spec)),
        input_size=(int(size[0]), int(size[1])),
        mean=_triple(spec.get("mean", IMAGENET_MEAN), "mean", key),
        std=_triple(spec.get("std", IMAGENET_STD), "std", key),
        weights_path=lambda: _exists(path),
        class_names=partial(_user_classes, dict(spec), key),
    )


def user_models_read(path: str | Path) -> dict[str, RegistryEntry]:
    """Entries from a YAML (.yaml/.yml) or JSON file mapping model key -> spec."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise InvalidModelConfig(f"{path}: must map model keys to model specs")
    return {str(key): user_entry(str(key), spec or {}) for key, spec in data.items()}


def user_models_from_env() -> dict[str, RegistryEntry]:
    path = os.environ.get(ENV_VAR)
    return user_models_read(path) if path else {}
