import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam
from torch import nn

from explain.methods import InvalidParams, UnknownMethod, method_get
from explain.pipeline import InvalidTarget, explain_image, image_to_input
from explain.zoo import SplitNet, UnknownModel, model_load, model_spec_get
from studyserver.researcher.demo import demo_photo


def small_net(seed=0) -> SplitNet:
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return SplitNet(features, head).eval()


def hooks_left(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


@pytest.mark.parametrize("target", [0, 3, 9])
def test_gradcam_equals_captum_on_a_seeded_relu_net(target):
    net = small_net()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ours = method_get("gradcam").attribute(net, x, torch.tensor([target, target]), {"layer": "features"})
    reference = LayerGradCam(net, net.features).attribute(x, target=target, relu_attributions=True)[:, 0]
    assert torch.allclose(ours.comparison, reference, atol=1e-6)
    signed = LayerGradCam(net, net.features).attribute(x, target=target, relu_attributions=False)[:, 0]
    assert torch.allclose(ours.raw, signed, atol=1e-6)
    assert hooks_left(net) == 0


@pytest.fixture(scope="module")
def lite0():
    return model_load("efficientnet_lite0")


def test_gradcam_equals_captum_on_efficientnet_lite0(lite0):
    x = image_to_input(demo_photo("chelsea.png"), lite0)
    ours = method_get("gradcam").attribute(lite0.net, x, torch.tensor([285]), {"layer": "features"})
    reference = LayerGradCam(lite0.net, lite0.net.features).attribute(x, target=285, relu_attributions=True)[:, 0]
    assert ours.raw.shape == (1, 7, 7)
    assert torch.allclose(ours.comparison, reference, atol=1e-5)
    assert hooks_left(lite0.net) == 0


def test_explanation_is_at_stimulus_resolution_with_metadata(lite0):
    image = demo_photo("chelsea.png").convert("RGB")
    e = explain_image(lite0, image, "gradcam", target=285)
    assert e.raw.shape == e.comparison.shape == (300, 451) and e.raw.dtype == np.float32
    assert e.predicted == 285 and 0.7 < e.predicted_probability < 0.9
    assert (e.comparison >= 0).all() and e.comparison.max() > 0
    assert e.weights_hash == lite0.weights_hash and len(e.weights_hash) == 16
    # the cat is on the right two thirds of the photo: that is where Grad-CAM puts its mass
    assert e.comparison[:, 150:].sum() > 2 * e.comparison[:, :150].sum()


def test_default_target_is_the_top_prediction(lite0):
    e = explain_image(lite0, demo_photo("coffee.png").convert("RGB"), "gradcam")
    assert e.target == e.predicted == 967


def test_maps_change_when_weights_are_randomised(lite0):
    """Adebayo et al. 2018: an explanation must depend on the weights."""
    import copy

    x = image_to_input(demo_photo("chelsea.png"), lite0)
    trained = method_get("gradcam").attribute(lite0.net, x, torch.tensor([285]), {"layer": "features"}).comparison
    randomised = copy.deepcopy(lite0.net)
    torch.manual_seed(0)
    # cascading randomisation from the top: the classifier, then the head conv
    nn.init.normal_(randomised.head.fc.weight, std=0.05)
    nn.init.normal_(randomised.features.net._conv_head.weight, std=0.05)
    other = method_get("gradcam").attribute(randomised, x, torch.tensor([285]), {"layer": "features"}).raw
    raw = method_get("gradcam").attribute(lite0.net, x, torch.tensor([285]), {"layer": "features"}).raw
    correlation = np.corrcoef(raw.ravel().numpy(), other.ravel().numpy())[0, 1]
    assert np.isfinite(correlation) and correlation < 0.5, correlation
    assert trained.max() > 0


def test_bad_input_errors_list_the_valid_choices(lite0):
    image = demo_photo("chelsea.png").convert("RGB")
    with pytest.raises(UnknownMethod, match="valid methods: .*gradcam"):
        explain_image(lite0, image, "gradkam")
    with pytest.raises(InvalidParams, match="valid: layer"):
        explain_image(lite0, image, "gradcam", params={"layers": "x"})
    with pytest.raises(InvalidParams, match="no layer 'nope'"):
        explain_image(lite0, image, "gradcam", params={"layer": "nope"})
    with pytest.raises(InvalidTarget, match="outside the model's classes"):
        explain_image(lite0, image, "gradcam", target=1000)
    with pytest.raises(UnknownModel, match="valid models: efficientnet_lite0"):
        model_spec_get("resnet5O")


@pytest.mark.parametrize("layer", ["features.net._blocks.15._depthwise_conv", "features.net._conv_head"])
def test_a_layer_followed_by_an_in_place_activation_is_captured_before_it(layer):
    """EfficientNet-Lite0's ReLU6 runs in place after each convolution (explain/network_folding.py): Grad-CAM,
    Guided Grad-CAM and FEM at a convolution see its output, not the activation's, and do not fail."""
    from explain.methods import method_get
    from explain.zoo import model_load

    net = model_load("efficientnet_lite0").net
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    seen = {}
    handle = net.get_submodule(layer).register_forward_hook(lambda _m, _i, out: seen.update(a=out.detach().clone()))
    with torch.no_grad():
        net(x)
    handle.remove()
    assert (seen["a"] < 0).any()  # the convolution's output: negative values, which ReLU6 would clamp
    fem = method_get("fem").attribute(net, x, torch.tensor([1]), {"layer": layer, "k": 2.0})
    from explain.methods.fem import fem_map

    assert torch.allclose(fem.raw, fem_map(seen["a"], 2.0), atol=1e-5)
    assert not torch.allclose(fem.raw, fem_map(torch.nn.functional.relu6(seen["a"]), 2.0), atol=1e-3)
    cam = method_get("gradcam").attribute(net, x, torch.tensor([1]), {"layer": layer})
    guided_cam = method_get("guided_gradcam").attribute(net, x, torch.tensor([1]), {"layer": layer, "upsample": "bilinear"})
    assert cam.raw.shape[-2:] == seen["a"].shape[-2:]
    guided = method_get("guided_backprop").attribute(net, x, torch.tensor([1]), {}).comparison
    weights = torch.nn.functional.interpolate(cam.comparison[:, None], size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(guided_cam.comparison, guided * weights, atol=1e-5 * float((guided * weights).max()))
