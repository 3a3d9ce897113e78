import pytest
import torch
from captum.attr import GuidedGradCam

from explain.methods import InvalidParams, method_get
from explain.pipeline import image_to_input
from explain.zoo import model_load
from studyserver.researcher.demo import demo_photo
from tests.explain.nets import LITE0_TOP, hooks_left, pcc, randomised_copy, seeded_input, small_net

GGC = method_get("guided_gradcam")


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_guided_gradcam_equals_captum_on_a_seeded_relu_net(mode):
    net, x = small_net(), seeded_input()
    out = GGC.attribute(net, x, torch.tensor([1, 1]), GGC.params_resolve({"upsample": mode}))
    reference = GuidedGradCam(net, net.features).attribute(x, target=1, interpolate_mode=mode)
    assert torch.allclose(out.comparison, reference.abs().amax(1), atol=1e-7)
    assert hooks_left(net) == 0


def test_guided_gradcam_refuses_an_unknown_upsampling():
    with pytest.raises(InvalidParams, match="bilinear, nearest"):
        GGC.params_resolve({"upsample": "area"})


@pytest.fixture(scope="module")
def lite0():
    return model_load("efficientnet_lite0")


def test_guided_gradcam_on_efficientnet_lite0_is_guided_times_cam(lite0):
    x = image_to_input(demo_photo("chelsea.png"), lite0)
    target = torch.tensor([285])
    out = GGC.attribute(lite0.net, x, target, GGC.params_resolve({}))
    guided = method_get("guided_backprop").attribute(lite0.net, x, target, {}).comparison
    cam = method_get("gradcam").attribute(lite0.net, x, target, {"layer": "features"}).comparison
    cam = torch.nn.functional.interpolate(cam[:, None], size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(out.comparison, guided * cam, atol=1e-6 * float((guided * cam).max()))
    assert hooks_left(lite0.net) == 0
    # Adebayo et al. 2018 (cascading randomisation, their Fig. 2): Guided Grad-CAM inherits much of guided
    # backprop's invariance to the top layers, but its Grad-CAM factor is not invariant, so randomising the
    # top changes the map clearly more than it changes guided backprop alone.
    top = randomised_copy(lite0.net, under=LITE0_TOP)
    randomised = GGC.attribute(top, x, target, GGC.params_resolve({})).comparison
    cam_randomised = method_get("gradcam").attribute(top, x, target, {"layer": "features"}).comparison
    guided_randomised = method_get("guided_backprop").attribute(top, x, target, {}).comparison
    assert pcc(cam, torch.nn.functional.interpolate(cam_randomised[:, None], size=(224, 224), mode="bilinear")[:, 0]) < 0.5
    assert pcc(out.comparison, randomised) < pcc(guided, guided_randomised) - 0.1
