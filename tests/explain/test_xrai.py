import numpy as np
import pytest
import torch
from saliency.core import XRAI as PairXRAI
from saliency.core import IntegratedGradients, XRAIParameters
from saliency.core.base import INPUT_OUTPUT_GRADIENTS
from saliency.core.xrai import _get_segments_felzenszwalb

from explain.methods import method_get
from explain.methods.xrai import ig_paths, xrai_greedy, xrai_segments

from .perturbation_support import chelsea, lite0, seeded_input, seeded_net


def call_model_function(net, target):
    """PAIR's documented PyTorch adapter: HWC batches in, input gradients of the target logit out."""

    def call(images, call_model_args=None, expected_keys=None):
        inputs = torch.tensor(images, dtype=torch.float32).permute(0, 3, 1, 2).requires_grad_(True)
        scores = net(inputs)[:, target]
        (grads,) = torch.autograd.grad(scores.sum(), inputs)
        return {INPUT_OUTPUT_GRADIENTS: grads.permute(0, 2, 3, 1).numpy()}

    return call


def as_bool(masks, shape):
    out = []
    for pixels in masks:
        mask = np.zeros(shape[0] * shape[1], dtype=bool)
        mask[pixels] = True
        out.append(mask.reshape(shape))
    return out


def hwc(x):
    return x[0].permute(1, 2, 0).numpy()


def test_segments_equal_pairs_on_a_photo():
    image = hwc(chelsea())
    ours = as_bool(xrai_segments(image), image.shape[:2])
    reference = _get_segments_felzenszwalb(image)
    assert len(ours) == len(reference) > 50
    assert all(np.array_equal(a, b) for a, b in zip(ours, reference))


def test_segments_equal_pairs_on_an_image_that_is_not_224():
    image = hwc(seeded_input(size=40))
    ours = as_bool(xrai_segments(image), image.shape[:2])
    reference = _get_segments_felzenszwalb(image)
    assert len(ours) == len(reference)
    assert all(np.array_equal(a, b) for a, b in zip(ours, reference))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_pairs_given_the_same_attribution_and_segments(seed):
    image = hwc(chelsea())
    segments = _get_segments_felzenszwalb(image)
    rng = np.random.default_rng(seed)
    attr = rng.normal(size=(224, 224, 3)).astype(np.float32)
    attr = np.cumsum(np.cumsum(attr, 0), 1) / 50  # spatially smooth, like a real attribution
    reference = PairXRAI().GetMask(image, None, segments=segments, base_attribution=attr)
    ours = xrai_greedy(attr.max(axis=2), [np.flatnonzero(m) for m in segments])
    assert np.array_equal(ours, reference)


def test_ig_equals_pairs_integrated_gradients():
    net, x = seeded_net(), seeded_input(size=32)
    low, high = torch.full_like(x, float(x.min())), torch.full_like(x, float(x.max()))
    ours = ig_paths(net, x, 3, [low, high], steps=12, batch_size=5)
    for attribution, baseline in zip(ours, (low, high)):
        reference = IntegratedGradients().GetMask(
            hwc(x), call_model_function(net, 3), x_baseline=hwc(baseline), x_steps=12, batch_size=4
        )
        np.testing.assert_allclose(attribution.permute(1, 2, 0).numpy(), reference, rtol=1e-4, atol=1e-6)


def test_xrai_equals_pair_end_to_end_on_a_seeded_net():
    net, x = seeded_net(), seeded_input(size=32)
    xrai = method_get("xrai")
    ours = xrai.attribute(net, x, torch.tensor([3]), xrai.params_resolve({"steps": 12}))
    reference = PairXRAI().GetMask(hwc(x), call_model_function(net, 3), batch_size=8, extra_parameters=XRAIParameters(steps=12))
    np.testing.assert_allclose(ours.raw[0].numpy(), reference, rtol=1e-4, atol=1e-6)
    assert torch.equal(ours.comparison, ours.raw.clamp(min=0))


def test_xrai_on_efficientnet_lite0_equals_pair_given_our_attribution():
    model, x = lite0(), chelsea()
    low, high = torch.full_like(x, float(x.min())), torch.full_like(x, float(x.max()))
    attrs = ig_paths(model.net, x, 285, [low, high], steps=4)
    mean = ((attrs[0] + attrs[1]) / 2).permute(1, 2, 0).numpy()
    ours = xrai_greedy(mean.max(axis=2), xrai_segments(hwc(x)))
    reference = PairXRAI().GetMask(hwc(x), None, base_attribution=mean)
    assert np.array_equal(ours, reference)


def test_map_changes_when_weights_are_randomised():
    xrai, x = method_get("xrai"), seeded_input(size=32)
    params = xrai.params_resolve({"steps": 8, "min_pixel_diff": 1})
    one = xrai.attribute(seeded_net(0), x, torch.tensor([2]), params).raw
    other = xrai.attribute(seeded_net(7), x, torch.tensor([2]), params).raw
    correlation = np.corrcoef(one.ravel().numpy(), other.ravel().numpy())[0, 1]
    assert correlation < 0.5, correlation
