import numpy as np
import pytest
import torch
from captum.attr import Occlusion

from explain.methods import InvalidParams, method_get
from explain.methods.occlusion import occlusion_map

from .perturbation_support import chelsea, lite0, seeded_input, seeded_net


@pytest.mark.parametrize("window,stride,baseline", [(5, 3, 0.0), (4, 2, -1.0), (8, 8, 0.5)])
def test_occlusion_equals_captum_on_a_seeded_net(window, stride, baseline):
    net, x = seeded_net(), seeded_input(batch=2, size=32)
    occlusion = method_get("occlusion")
    params = occlusion.params_resolve({"window": window, "stride": stride, "baseline": baseline, "batch_size": 7})
    ours = occlusion.attribute(net, x, torch.tensor([4, 4]), params)
    reference = Occlusion(net).attribute(
        x, target=4, sliding_window_shapes=(3, window, window), strides=(3, stride, stride), baselines=baseline
    )
    assert torch.allclose(reference[:, 0], reference[:, 2])  # the window spans all channels
    assert torch.allclose(ours.raw, reference[:, 0], atol=1e-5)
    assert torch.equal(ours.comparison, ours.raw.clamp(min=0))


def test_occlusion_equals_captum_on_efficientnet_lite0():
    model, x = lite0(), chelsea()
    ours = occlusion_map(model.net, x, 285, window=56, stride=56, baseline=0.0)
    reference = Occlusion(model.net).attribute(
        x, target=285, sliding_window_shapes=(3, 56, 56), strides=(3, 56, 56), baselines=0.0, perturbations_per_eval=16
    )
    assert torch.allclose(ours, reference[0, 0], atol=1e-3 * float(reference.abs().max()))


def test_defaults_and_bad_parameters():
    occlusion = method_get("occlusion")
    assert occlusion.params_resolve({}) == {"window": 16, "stride": 8, "baseline": 0.0, "batch_size": 0}
    with pytest.raises(InvalidParams, match="stride"):
        occlusion.params_resolve({"stride": 0})
    with pytest.raises(InvalidParams, match="larger than the input"):
        occlusion.attribute(seeded_net(), seeded_input(size=8), torch.tensor([0]), occlusion.params_resolve({}))


def test_map_changes_when_weights_are_randomised():
    occlusion, x = method_get("occlusion"), seeded_input(size=32)
    params = occlusion.params_resolve({"window": 4, "stride": 2})
    one = occlusion.attribute(seeded_net(0), x, torch.tensor([2]), params).raw
    other = occlusion.attribute(seeded_net(7), x, torch.tensor([2]), params).raw
    correlation = np.corrcoef(one.ravel().numpy(), other.ravel().numpy())[0, 1]
    assert correlation < 0.5, correlation
