import numpy as np
import torch

from explain.methods import method_get
from explain.methods.base import activations_captured

from .fem_reference import fem_literal
from .perturbation_support import chelsea, lite0, seeded_input, seeded_net


def literal_on(net, x):
    with torch.no_grad(), activations_captured(net.features) as store:
        net(x)
    return fem_literal(store["activations"].detach().permute(0, 2, 3, 1).double().numpy())


def test_fem_equals_the_papers_code_on_a_seeded_net():
    net, x = seeded_net(), seeded_input(batch=3, size=32)
    ours = method_get("fem").attribute(net, x, torch.tensor([0, 1, 2]), method_get("fem").params_resolve({}))
    assert ours.raw.shape == (3, 16, 16)
    np.testing.assert_allclose(ours.raw.numpy(), literal_on(net, x), atol=1e-5)
    assert ours.raw.max() == 1.0


def test_fem_equals_the_papers_code_on_efficientnet_lite0():
    model, x = lite0(), chelsea()
    ours = method_get("fem").attribute(model.net, x, torch.tensor([285]), method_get("fem").params_resolve({}))
    assert ours.raw.shape == (1, 7, 7)
    np.testing.assert_allclose(ours.raw.numpy(), literal_on(model.net, x), atol=1e-5)
    # class-agnostic: any target gives the same map
    other = method_get("fem").attribute(model.net, x, torch.tensor([1]), method_get("fem").params_resolve({}))
    assert torch.equal(ours.raw, other.raw)


def test_an_all_zero_map_stays_zero():
    net, x = seeded_net(), torch.zeros(1, 3, 32, 32)
    net.features[0].bias.zero_()
    ours = method_get("fem").attribute(net, x, torch.tensor([0]), method_get("fem").params_resolve({}))
    assert torch.equal(ours.raw, torch.zeros(1, 16, 16))


def test_map_changes_when_weights_are_randomised():
    x = seeded_input(size=32)
    one = method_get("fem").attribute(seeded_net(0), x, torch.tensor([0]), {"layer": "features", "k": 2.0}).raw
    other = method_get("fem").attribute(seeded_net(7), x, torch.tensor([0]), {"layer": "features", "k": 2.0}).raw
    assert not torch.allclose(one, other)
    correlation = np.corrcoef(one.ravel().numpy(), other.ravel().numpy())[0, 1]
    assert correlation < 0.5, correlation


def test_no_hook_is_left_behind():
    net = seeded_net()
    method_get("fem").attribute(net, seeded_input(), torch.tensor([0]), {"layer": "features", "k": 2.0})
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in net.modules()) == 0
