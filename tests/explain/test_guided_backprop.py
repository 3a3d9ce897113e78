import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop
from torch import nn

from explain.methods import InvalidParams, method_get
from explain.methods.guided_backprop import guided
from explain.pipeline import image_to_input
from explain.zoo import SplitNet, model_load
from studyserver.researcher.demo import demo_photo
from tests.explain.nets import LITE0_TOP, hooks_left, pcc, randomised_copy, seeded_input, small_net

GBP = method_get("guided_backprop")


def test_guided_backprop_equals_captum_on_a_seeded_relu_net():
    net, x = small_net(), seeded_input()
    out = GBP.attribute(net, x, torch.tensor([4, 4]), {})
    reference = GuidedBackprop(net).attribute(x, target=4)
    assert torch.allclose(out.comparison, reference.abs().amax(1), atol=1e-7)
    assert torch.allclose(out.raw, reference.gather(1, reference.abs().argmax(1, keepdim=True))[:, 0], atol=1e-7)
    assert hooks_left(net) == 0


def hand_guided_relu6(net: SplitNet, x: torch.Tensor, target: int) -> torch.Tensor:
    """The guided rule derived by hand, layer by layer, on small_net(activation=nn.ReLU6):
    at each ReLU6, grad_in = g * [0 < z < 6] * [g > 0]; linear layers pass the plain gradient."""
    conv1, _, pool, conv2, _ = net.features
    x = x.detach().requires_grad_(True)
    z1 = conv1(x)
    a1 = z1.clamp(0, 6).detach().requires_grad_(True)
    p = pool(a1)
    z2 = conv2(p)
    a2 = z2.clamp(0, 6).detach().requires_grad_(True)
    logit = net.head(a2)[:, target].sum()
    (g,) = torch.autograd.grad(logit, a2)
    g = g * ((z2 > 0) & (z2 < 6)) * (g > 0)
    (g,) = torch.autograd.grad(z2, a1, g)  # through conv2 and the max pool
    g = g * ((z1 > 0) & (z1 < 6)) * (g > 0)
    (g,) = torch.autograd.grad(z1, x, g)
    return g


def test_guided_backprop_on_relu6_follows_the_hand_derived_rule_not_the_plain_gradient():
    net, x = small_net(activation=nn.ReLU6), 8 * seeded_input()
    with torch.no_grad():
        assert (net.features[0](x) > 6).any()  # the upper bound of ReLU6 is exercised
    grads = hand_guided_relu6(net, x, 6)
    out = GBP.attribute(net, x, torch.tensor([6, 6]), {})
    assert torch.allclose(out.comparison, grads.abs().amax(1), atol=1e-7)
    plain = method_get("gradient").attribute(net, x, torch.tensor([6, 6]), {}).comparison
    assert (out.comparison - plain).abs().max() > 0.1 * plain.max()
    # the pitfall the module exists for: Captum patches nn.ReLU only, so on ReLU6 it is the plain gradient
    assert torch.allclose(GuidedBackprop(net).attribute(x, target=6).abs().amax(1), plain, atol=1e-7)
    assert hooks_left(net) == 0


def test_hooks_are_released_on_error_and_a_net_without_activations_is_refused():
    net = small_net()
    with pytest.raises(RuntimeError, match="boom"):
        with guided(net) as guidance:
            assert guidance.modules == 2 and hooks_left(net) == 2
            raise RuntimeError("boom")
    assert hooks_left(net) == 0
    linear = SplitNet(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()
    with pytest.raises(InvalidParams, match="ReLU, ReLU6"):
        GBP.attribute(linear, seeded_input(), torch.tensor([0, 0]), {})


@pytest.fixture(scope="module")
def lite0():
    return model_load("efficientnet_lite0")


def test_guided_backprop_on_efficientnet_lite0_is_guided_and_leaves_no_hook(lite0):
    x = image_to_input(demo_photo("chelsea.png"), lite0)
    out = GBP.attribute(lite0.net, x, torch.tensor([285]), {})
    plain = method_get("gradient").attribute(lite0.net, x, torch.tensor([285]), {}).comparison
    captum = GuidedBackprop(lite0.net).attribute(x, target=285).abs().amax(1)
    assert torch.allclose(captum, plain, atol=1e-6)  # Captum silently returns the plain gradient here
    assert pcc(out.comparison, plain) < 0.9
    assert hooks_left(lite0.net) == 0
    # Adebayo et al. 2018: guided backprop barely depends on the top layers (it fails their cascading
    # randomisation test; so does ours, as a faithful implementation should) ...
    top = GBP.attribute(randomised_copy(lite0.net, under=LITE0_TOP), x, torch.tensor([285]), {}).comparison
    assert pcc(out.comparison, top) > 0.9
    # ... but it does depend on the weights: randomising the stem changes it
    stem = GBP.attribute(randomised_copy(lite0.net, under=("features.net._conv_stem",)), x, torch.tensor([285]), {})
    assert pcc(out.comparison, stem.comparison) < 0.5


def test_guided_rule_at_relu6_is_exact_on_a_single_activation():
    a = torch.tensor([-1.0, 0.5, 3.0, 6.0, 7.0, 2.0], requires_grad=True)
    layer = nn.Sequential(nn.ReLU6())
    with guided(layer):
        out = layer(a)
    (g,) = torch.autograd.grad(out, a, torch.tensor([1.0, 1.0, -1.0, 1.0, 1.0, 2.0]))
    assert torch.equal(out.detach(), F.relu6(a.detach()))
    assert g.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 2.0]


@pytest.mark.parametrize("activation", [nn.ReLU, nn.ReLU6])
def test_in_place_activations_are_guided_the_same(activation):
    x = 8 * seeded_input()
    plain = GBP.attribute(small_net(activation=activation), x, torch.tensor([2, 2]), {})
    in_place = GBP.attribute(small_net(activation=lambda: activation(inplace=True)), x, torch.tensor([2, 2]), {})
    assert torch.allclose(plain.raw, in_place.raw, atol=1e-7)
