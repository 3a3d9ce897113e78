import pytest
import torch
from captum.attr import Saliency

from explain.methods import method_get
from explain.pipeline import image_to_input
from explain.zoo import model_load
from studyserver.researcher.demo import demo_photo
from tests.explain.nets import LITE0_TOP, hooks_left, pcc, randomised_copy, seeded_input, small_net


@pytest.mark.parametrize("target", [0, 7])
def test_gradient_equals_captum_saliency_on_a_seeded_relu_net(target):
    net, x = small_net(), seeded_input()
    out = method_get("gradient").attribute(net, x, torch.tensor([target, target]), {})
    reference = Saliency(net).attribute(x, target=target, abs=True).amax(1)
    assert torch.allclose(out.comparison, reference, atol=1e-7)
    signed = Saliency(net).attribute(x, target=target, abs=False)
    # raw keeps the sign of the channel the comparison map took
    assert torch.equal(out.raw.abs(), out.comparison)
    picked = signed.abs().argmax(1, keepdim=True)
    assert torch.allclose(out.raw, signed.gather(1, picked)[:, 0], atol=1e-7)
    assert (out.raw < 0).any() and (out.raw > 0).any()
    assert hooks_left(net) == 0


def test_gradient_targets_each_row_separately():
    net, x = small_net(), seeded_input()
    both = method_get("gradient").attribute(net, x, torch.tensor([1, 4]), {}).comparison
    assert torch.allclose(both[1], Saliency(net).attribute(x[1:], target=4, abs=True).amax(1)[0], atol=1e-7)


@pytest.fixture(scope="module")
def lite0():
    return model_load("efficientnet_lite0")


def test_gradient_equals_captum_on_efficientnet_lite0_and_depends_on_weights(lite0):
    x = image_to_input(demo_photo("chelsea.png"), lite0)
    out = method_get("gradient").attribute(lite0.net, x, torch.tensor([285]), {})
    reference = Saliency(lite0.net).attribute(x, target=285, abs=True).amax(1)
    assert out.raw.shape == (1, 224, 224)
    assert torch.allclose(out.comparison, reference, atol=1e-6)
    randomised = method_get("gradient").attribute(randomised_copy(lite0.net, under=LITE0_TOP), x, torch.tensor([285]), {})
    assert pcc(out.comparison, randomised.comparison) < 0.5
    assert hooks_left(lite0.net) == 0
