import pytest
import torch
from captum.attr import NoiseTunnel, Saliency

from explain.methods import method_get
from explain.methods.batching import batch_size_limited
from explain.pipeline import image_to_input
from explain.zoo import model_load
from studyserver.researcher.demo import demo_photo
from tests.explain.nets import LITE0_TOP, hooks_left, pcc, randomised_copy, seeded_input, small_net


def captum_smoothgrad(net, x, target, n, noise, seed):
    """Captum's SmoothGrad as its documentation shows, with absolute stdevs and the global RNG seeded."""
    sigma = noise * float(x.max() - x.min())
    torch.manual_seed(seed)
    return NoiseTunnel(Saliency(net)).attribute(
        x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=n, stdevs=sigma, target=target, abs=True
    ).amax(1)


def test_smoothgrad_equals_captum_noise_tunnel_on_a_seeded_relu_net():
    net, x = small_net(), seeded_input(batch=1)
    ours = method_get("smoothgrad").attribute(net, x, torch.tensor([3]), {"n": 20, "noise": 0.15, "seed": 5})
    reference = captum_smoothgrad(net, x, 3, n=20, noise=0.15, seed=5)
    assert torch.allclose(ours.comparison, reference, atol=1e-6)
    assert torch.equal(ours.raw, ours.comparison) and hooks_left(net) == 0


def test_smoothgrad_does_not_depend_on_batching_or_position_and_the_seed_matters():
    net, x = small_net(), seeded_input(batch=2)
    method, params = method_get("smoothgrad"), {"n": 20, "noise": 0.2, "seed": 1}
    both = method.attribute(net, x, torch.tensor([3, 3]), params).comparison
    with batch_size_limited(3):
        alone = method.attribute(net, x[1:], torch.tensor([3]), params).comparison
    assert torch.allclose(both[1], alone[0], atol=1e-6)
    other_seed = method.attribute(net, x[1:], torch.tensor([3]), {**params, "seed": 2}).comparison
    assert not torch.allclose(alone, other_seed)
    # noise 0 is the plain gradient map
    plain = method.attribute(net, x, torch.tensor([3, 3]), {**params, "noise": 0.0}).comparison
    assert torch.allclose(plain, method_get("gradient").attribute(net, x, torch.tensor([3, 3]), {}).comparison, atol=1e-6)


@pytest.fixture(scope="module")
def lite0():
    return model_load("efficientnet_lite0")


def test_smoothgrad_equals_captum_on_efficientnet_lite0_and_depends_on_weights(lite0):
    x = image_to_input(demo_photo("chelsea.png"), lite0)
    params = {"n": 4, "noise": 0.15, "seed": 0}
    ours = method_get("smoothgrad").attribute(lite0.net, x, torch.tensor([285]), params).comparison
    reference = captum_smoothgrad(lite0.net, x, 285, n=4, noise=0.15, seed=0)
    # same noise up to float rounding (randn * sigma vs torch.normal), which flips a few ReLU6 gates
    # of the deep net: equal up to those
    assert pcc(ours, reference) > 0.999 and (ours - reference).abs().mean() < 2e-3 * reference.mean()
    randomised = method_get("smoothgrad").attribute(randomised_copy(lite0.net, under=LITE0_TOP), x, torch.tensor([285]), params).comparison
    assert pcc(ours, randomised) < 0.5
