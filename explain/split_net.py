"""The shape every explained network takes: logits = head(features(x)), so that the conventional last
conv map (`features`, the default Grad-CAM and FEM layer) is a distinct module and hooks on it are
unambiguous."""
from __future__ import annotations

import torch
from torch import nn


class SplitNet(nn.Module):
    """logits = head(features(x)). `features` is a distinct module, so hooks on it are unambiguous."""

    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
