"""The prepared network computes the same values and the same second-order gradients, faster."""
import copy

import pytest
import torch
from torch import nn

from explain.finetune.double_backward import double_backward_prepared
from explain.finetune.harmonization import alignment_term, input_gradient_saliency
from explain.finetune.training import train_mode


def _depthwise_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 5, stride=2, padding=2, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, stride=2, padding=(1, 0), dilation=1, groups=4, bias=False), nn.Softplus(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )
    for module in net.modules():  # running statistics that are not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net


def _second_order_grads(net, images, labels, human):
    logits, saliency, usable = input_gradient_saliency(net, images, labels)
    loss = alignment_term(saliency, human, usable) + logits.logsumexp(1).mean()
    net.zero_grad(set_to_none=True)
    loss.backward()
    return logits.detach(), saliency.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}


@pytest.mark.parametrize("batchnorm", ["frozen", "train"])
def test_prepared_and_plain_give_the_same_logits_saliency_and_weight_gradients(batchnorm):
    plain = _depthwise_net()
    prepared = copy.deepcopy(plain)
    counts = double_backward_prepared(prepared)
    assert counts == {"grouped_conv": 2, "batchnorm": 2}
    assert double_backward_prepared(prepared) == {"grouped_conv": 0, "batchnorm": 0}  # idempotent
    train_mode(plain, batchnorm)
    train_mode(prepared, batchnorm)
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(3, 3, 23, 29, generator=g), torch.tensor([0, 3, -1])
    human = torch.rand(3, 23, 29, generator=g)
    ours, theirs = _second_order_grads(prepared, images, labels, human), _second_order_grads(plain, images, labels, human)
    for a, b in zip(ours[:2], theirs[:2]):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    for name, grad in theirs[2].items():
        assert torch.allclose(ours[2][name], grad, atol=1e-5, rtol=1e-3), name
    assert set(prepared.state_dict()) == set(plain.state_dict())


def test_efficientnet_prepared_matches_pytorchs_double_backward():
    from explain.zoo import model_trainable

    plain = model_trainable("efficientnet_lite0").net
    prepared = copy.deepcopy(plain)
    assert double_backward_prepared(prepared) == {"grouped_conv": 16, "batchnorm": 49}
    for net in (plain, prepared):
        train_mode(net, "frozen")
        net.features.net._dropout.p = 0.0  # no random draw differs between the two
        net.features.net._global_params = net.features.net._global_params._replace(drop_connect_rate=0.0)
    g = torch.Generator().manual_seed(2)
    images, labels = torch.randn(1, 3, 96, 96, generator=g), torch.tensor([285])
    human = torch.rand(1, 96, 96, generator=g) ** 4
    ours, theirs = _second_order_grads(prepared, images, labels, human), _second_order_grads(plain, images, labels, human)
    assert torch.allclose(ours[0], theirs[0], atol=1e-3)
    assert torch.corrcoef(torch.stack([ours[1].ravel(), theirs[1].ravel()]))[0, 1] > 0.9999
    for name in ("features.net._blocks.3._depthwise_conv.weight", "features.net._blocks.3._bn1.weight",
                 "features.net._conv_stem.weight", "features.net._fc.weight"):
        a, b = ours[2][name].ravel(), theirs[2][name].ravel()
        assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.999 and torch.allclose(a.norm(), b.norm(), rtol=1e-2), name


def test_prepared_passes_run_under_bfloat16_autocast():
    """The trainer runs CUDA passes under bfloat16 autocast; the prepared backward casts to the
    gradient's precision (checked with the CPU's autocast, same rules)."""
    plain = _depthwise_net()
    prepared = copy.deepcopy(plain)
    double_backward_prepared(prepared)
    g = torch.Generator().manual_seed(3)
    images, labels, human = torch.randn(2, 3, 20, 20, generator=g), torch.tensor([1, 2]), torch.rand(2, 20, 20, generator=g)
    grads = []
    for net in (prepared, plain):
        train_mode(net, "frozen")
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            logits, saliency, usable = input_gradient_saliency(net, images, labels)
        loss = alignment_term(saliency.float(), human, usable.float()) + logits.float().logsumexp(1).mean()
        net.zero_grad(set_to_none=True)
        loss.backward()
        grads.append(torch.cat([p.grad.float().ravel() for p in net.parameters()]))
    assert grads[0].dtype == torch.float32 and torch.isfinite(grads[0]).all()
    assert torch.corrcoef(torch.stack(grads))[0, 1] > 0.95
