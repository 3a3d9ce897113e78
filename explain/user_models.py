"""Researchers' own classifiers (entries of `EXPLAIN_MODELS_FILE`, parsed by `model_catalogue`) built
as modules: a TorchScript file, or a state dict with the import path of its architecture."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .model_catalogue import ModelUnavailable


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


def user_build(spec: dict, path: Path) -> nn.Module:
    """A researcher's model from its entry in the user models file; `path` is its checked weights file."""
    if "torchscript" in spec:
        model = torch.jit.load(str(path), map_location="cpu")
    else:
        model = _import(spec["architecture"])(**(spec.get("architecture_kwargs") or {}))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return UserNet(model, spec.get("features"))
