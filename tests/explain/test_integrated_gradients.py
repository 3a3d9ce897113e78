import pytest
import torch
from captum.attr import IntegratedGradients

from annotations.demo import demo_photo
from explain.methods import InvalidParams, method_get
from explain.methods.batching import fast_layout
from explain.pipeline import image_to_input
from explain.zoo import model_load
from tests.explain.nets import (
    LITE0_TOP,
    hooks_left,
    pcc,
    randomised_copy,
    seeded_input,
    small_net,
)

IG = method_get("integrated_gradients")


def completeness_gap(net, x, target, raw, baseline=0.0) -> torch.Tensor:
    """|sum(IG) - (f(x) - f(x'))| / |f(x) - f(x')| per image."""
    with torch.no_grad():
        delta = net(x)[:, target] - net(torch.full_like(x, baseline))[:, target]
    return (raw.sum(dim=(1, 2)) - delta).abs() / delta.abs()


@pytest.mark.parametrize("quadrature", ["gausslegendre", "riemann_trapezoid"])
def test_ig_equals_captum_on_a_seeded_relu_net(quadrature):
    net, x = small_net(), seeded_input()
    params = IG.params_resolve({"steps": 30, "quadrature": quadrature, "baseline": 0.5})
    out = IG.attribute(net, x, torch.tensor([2, 2]), params)
    reference = IntegratedGradients(net).attribute(x, baselines=0.5, target=2, n_steps=30, method=quadrature)
    assert torch.allclose(out.raw, reference.sum(1), atol=1e-6)
    assert torch.allclose(out.comparison, reference.abs().amax(1), atol=1e-6)
    assert hooks_left(net) == 0


def test_ig_completeness_within_two_percent_on_a_relu_net():
    net, x = small_net(), seeded_input()
    out = IG.attribute(net, x, torch.tensor([5, 5]), IG.params_resolve({}))
    assert (completeness_gap(net, x, 5, out.raw) < 0.02).all()


def test_ig_rejects_an_unknown_quadrature():
    with pytest.raises(InvalidParams, match="gausslegendre"):
        IG.params_resolve({"quadrature": "simpson"})


@pytest.fixture(scope="module")
def lite0():
    return model_load("efficientnet_lite0")


def test_ig_on_efficientnet_lite0_is_complete_equals_captum_and_depends_on_weights(lite0):
    x = image_to_input(demo_photo("chelsea.png"), lite0)
    # ReLU6 gates make the path integrand rough: 50 points miss by 11% here (see the module), 100 do not
    out = IG.attribute(lite0.net, x, torch.tensor([285]), IG.params_resolve({"steps": 100}))
    gap = completeness_gap(lite0.net, x, 285, out.raw).item()
    assert gap < 0.02
    with torch.no_grad():
        delta = lite0.net(x)[0, 285] - lite0.net(torch.zeros_like(x))[0, 285]
    assert abs(out.meta["completeness_delta"][0]) == pytest.approx(gap * abs(float(delta)), rel=1e-3, abs=1e-4)
    few = IG.params_resolve({"steps": 8})
    ours = IG.attribute(lite0.net, x, torch.tensor([285]), few).raw
    # the same forward as ours (batches laid out channels-last): under another layout a few ReLU6 gates
    # fall the other way by rounding and move blocks of the map (tests/explain/nets.py)
    channels_last = lambda inputs: lite0.net(fast_layout(inputs))  # noqa: E731
    reference = IntegratedGradients(channels_last).attribute(x, target=285, n_steps=8, internal_batch_size=8).sum(1)
    assert torch.allclose(ours, reference, atol=1e-4 * reference.abs().max())
    as_given = IntegratedGradients(lite0.net).attribute(x, target=285, n_steps=8, internal_batch_size=8).sum(1)
    assert pcc(ours, as_given) > 0.99
    randomised = IG.attribute(randomised_copy(lite0.net, under=LITE0_TOP), x, torch.tensor([285]), few).comparison
    assert pcc(IG.attribute(lite0.net, x, torch.tensor([285]), few).comparison, randomised) < 0.5
