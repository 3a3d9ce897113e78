"""Folding BatchNorm into the convolutions and inlining the 'SAME' paddings leaves EfficientNet-Lite0's
function unchanged (explain/network_folding.py)."""
import copy

import pytest
import torch
from torch import nn

from explain.methods.batching import fast_layout
from explain.network_folding import conv_bn_fold, efficientnet_simplified, same_padding_inline


def _lite0_unfolded():
    from efficientnet_lite_pytorch import EfficientNet

    from explain.model_catalogue import efficientnet_lite0_weights

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True))
    return net.eval()


def test_lite0_simplified_keeps_logits_and_input_gradients():
    plain = _lite0_unfolded()
    simple = copy.deepcopy(plain)
    changed = efficientnet_simplified(simple)
    # 12 symmetric 'SAME' paddings and the 5 asymmetric ones of the stride-2 layers
    assert changed == {"batchnorm_folded": 49, "padding_inlined": 17, "activations_in_place": 17}
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ZeroPad2d)) for m in simple.modules())
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    for layout in (lambda t: t, fast_layout):
        with torch.no_grad():
            expected, got = plain(layout(x)), simple(layout(x))
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()
        assert torch.equal(got.argmax(1), expected.argmax(1))
    grads = []
    for net in (plain, simple):
        leaf = x[:1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(leaf)[0, 7], leaf)
        grads.append(grad)
    assert torch.allclose(grads[1], grads[0], atol=1e-5 * float(grads[0].abs().max()), rtol=1e-3)


def test_registry_model_is_the_simplified_network():
    from explain.zoo import model_load

    net = model_load("efficientnet_lite0", torch.device("cpu")).net
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_conv_bn_fold_matches_conv_then_batchnorm_and_refuses_bad_pairs():
    torch.manual_seed(0)
    parent = nn.Sequential()
    parent.add_module("conv", nn.Conv2d(4, 6, 3, padding=1, bias=False))
    parent.add_module("bn", nn.BatchNorm2d(6))
    with torch.no_grad():
        parent.bn.running_mean.uniform_(-1, 1)
        parent.bn.running_var.uniform_(0.5, 2)
        parent.bn.weight.uniform_(-2, 2)
        parent.bn.bias.uniform_(-1, 1)
    parent.eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        expected = parent(x)
        conv_bn_fold(parent, "conv", "bn")
        got = parent(x)
    assert isinstance(parent.bn, nn.Identity) and parent.conv.bias is not None
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(TypeError):
        conv_bn_fold(parent, "conv", "bn")  # already folded: bn is an Identity now
    training = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)).train()
    with pytest.raises(ValueError):
        conv_bn_fold(training, "0", "1")


@pytest.mark.parametrize("kernel, stride, size", [(3, 1, 16), (3, 2, 16), (5, 2, 15), (4, 2, 17), (2, 1, 8)])
def test_same_padding_inline_keeps_values_and_input_gradients(kernel, stride, size):
    """Symmetric or not ((0, 1) for 3 x 3 stride 2 at 16, (1, 2) for 5 x 5 stride 2 at 15, (0, 1) for
    2 x 2 stride 1): the inlined convolution gives the padded one's outputs and input gradients."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    torch.manual_seed(kernel * 100 + size)
    conv = Conv2dStaticSamePadding(3, 4, kernel, stride=stride, image_size=size, bias=True)
    original = copy.deepcopy(conv)
    x = torch.randn(2, 3, size, size)
    assert isinstance(original.static_padding, nn.ZeroPad2d)
    assert same_padding_inline(conv) is True
    assert isinstance(conv.static_padding, nn.Identity)
    outputs, grads = [], []
    for net in (original, conv):
        leaf = x.clone().requires_grad_(True)
        out = net(leaf)
        (grad,) = torch.autograd.grad((out * torch.arange(out.numel()).view_as(out).sin()).sum(), leaf)
        outputs.append(out.detach())
        grads.append(grad)
    assert outputs[1].shape == outputs[0].shape
    assert torch.allclose(outputs[1], outputs[0], atol=1e-6)
    assert torch.allclose(grads[1], grads[0], atol=1e-6)


def test_same_padding_inline_leaves_a_dilated_asymmetric_padding():
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    dilated = Conv2dStaticSamePadding(2, 2, 3, stride=2, image_size=16, bias=False, dilation=2)
    assert isinstance(dilated.static_padding, nn.ZeroPad2d)
    left, right, top, bottom = dilated.static_padding.padding
    x = torch.randn(1, 2, 16, 16)
    with torch.no_grad():
        before = dilated(x)
        moved = same_padding_inline(dilated)
        assert torch.allclose(dilated(x), before, atol=1e-6)
    assert moved is (left == right and top == bottom)


def test_relu6_overwrites_its_input_only_when_autograd_does_not_record_it():
    from explain.network_folding import ReLU6InPlace

    act = ReLU6InPlace()
    x = torch.linspace(-3, 9, 25).view(1, 1, 5, 5)
    expected = x.clamp(0, 6)
    unrecorded = x.clone()
    with torch.no_grad():
        assert act(unrecorded) is unrecorded and torch.equal(unrecorded, expected)
    frozen = x.clone()  # grad mode on, but nothing to record
    assert act(frozen) is frozen and torch.equal(frozen, expected)
    leaf = x.clone().requires_grad_(True)
    out = act(leaf)
    assert out is not leaf and torch.equal(out, expected) and torch.equal(leaf.detach(), x)
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    assert torch.equal(grad, ((x > 0) & (x < 6)).float())
    lite0 = _lite0_unfolded()
    efficientnet_simplified(lite0)
    assert not any(type(m) is nn.ReLU6 for m in lite0.modules())
    assert any(isinstance(m, ReLU6InPlace) for m in lite0.modules())
