"""The seeds' torchvision classifiers (ResNet-50, VGG-16, Inception-v3) as SplitNets, built from the
ImageNet weights file their catalogue spec names (`model_catalogue`). Needs torchvision, imported
only when such a model is loaded."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .model_catalogue import ModelUnavailable
from .split_net import SplitNet


def torchvision_build(key: str, path: Path) -> SplitNet:
    """resnet50, vgg16 or inception_v3 with the weights file at `path`, split at its last conv map."""
    try:
        from torchvision import models
    except Exception as exc:  # ImportError, or a torchvision built for another torch
        raise ModelUnavailable(
            f"model {key!r} needs the package torchvision matching torch {torch.__version__}, which does not import "
            f"here ({exc.__class__.__name__}: {exc})"
        ) from None

    if key == "resnet50":
        net = models.resnet50(weights=None)
    elif key == "vgg16":
        net = models.vgg16(weights=None)
    else:
        net = models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return _torchvision_split(key, net)


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
