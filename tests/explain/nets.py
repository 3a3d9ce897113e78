"""Small seeded networks and checks shared by the method tests."""
import torch
from torch import nn

from explain.zoo import SplitNet


def small_net(seed: int = 0, activation: type[nn.Module] = nn.ReLU, classes: int = 10) -> SplitNet:
    """A seeded two-conv CNN (ReLU by default); `features` is the last conv map."""
    torch.manual_seed(seed)
    features = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), activation(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), activation()
    )
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))
    return SplitNet(features, head).eval()


def seeded_input(batch: int = 2, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def hooks_left(net: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
        for m in net.modules()
    )


def randomised_copy(net: nn.Module, seed: int = 0, under: tuple[str, ...] = ("",)) -> nn.Module:
    """Adebayo et al. 2018 randomisation: every conv/linear weight below the named sub-modules ("" =
    all) re-drawn with its default initialisation (cascading from the top when given the top layers)."""
    import copy

    other = copy.deepcopy(net)
    torch.manual_seed(seed)
    for prefix in under:
        root = other.get_submodule(prefix) if prefix else other
        for module in root.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.reset_parameters()
    return other


# EfficientNet-Lite0's top: the classifier, the head conv and the last block (cascading randomisation)
LITE0_TOP = ("head.fc", "features.net._conv_head", "features.net._blocks.15")


def pcc(a: torch.Tensor, b: torch.Tensor) -> float:
    import numpy as np

    return float(np.corrcoef(a.detach().double().ravel().numpy(), b.detach().double().ravel().numpy())[0, 1])


def assert_close_up_to_gate_flips(a, b, *, rtol=1e-4, atol=1e-5, share=0.99, correlation=0.999):
    """a equals b to float rounding on all but (1 - share) of the entries, and correlates above `correlation`.

    A gradient through ReLU6 is piecewise constant in the input: a pre-activation within rounding of 0
    or 6 can fall on either side under another batch size or memory layout (other kernel blocking),
    which flips that one unit's gradient and changes the small block of input pixels under it (seen:
    300 of 135300 pixels on EfficientNet-Lite0). `atol` is relative to max |b|."""
    import numpy as np

    a, b = (np.asarray(t.detach().cpu() if hasattr(t, "detach") else t, dtype=np.float64) for t in (a, b))
    scale = float(np.abs(b).max())
    assert scale > 0
    close = np.isclose(a, b, rtol=rtol, atol=atol * scale)
    assert close.mean() > share, (close.mean(), float(np.abs(a - b).max() / scale))
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > correlation
