"""Small seeded networks and the real model, shared by the perturbation-method tests."""
import copy
import functools

import torch
from torch import nn

from explain.pipeline import image_to_input
from explain.zoo import SplitNet, model_load


def seeded_net(seed=0, classes=10) -> SplitNet:
    """A ReLU conv net with a distinct `features` map (16 x H/2 x W/2), in eval mode."""
    torch.manual_seed(seed)
    features = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()
    )
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))
    net = SplitNet(features, head).eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net


def seeded_input(batch=1, size=32, seed=1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def randomised_copy(net: SplitNet, seed=0) -> SplitNet:
    """Cascading randomisation from the top (Adebayo et al. 2018): classifier and head conv."""
    other = copy.deepcopy(net)
    torch.manual_seed(seed)
    nn.init.normal_(other.head.fc.weight, std=0.05)
    nn.init.normal_(other.features.net._conv_head.weight, std=0.05)
    return other


@functools.cache
def lite0():
    """The real EfficientNet-Lite0 (loaded once per process)."""
    return model_load("efficientnet_lite0")


@functools.cache
def chelsea() -> torch.Tensor:
    """skimage's cat photo as Lite0 sees it: 1 x 3 x 224 x 224, normalised (class 285)."""
    import skimage.data
    from PIL import Image

    return image_to_input(Image.fromarray(skimage.data.chelsea()), lite0())
