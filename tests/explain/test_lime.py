import numpy as np
import pytest
import torch
from lime.lime_image import LimeImageExplainer
from lime.wrappers.scikit_image import SegmentationAlgorithm

from explain.methods import method_get
from explain.methods.lime import lime_segments, lime_weights, unit_image

from .perturbation_support import chelsea, lite0, randomised_copy, seeded_input, seeded_net


def lime_reference(net, x, target, segments, samples, seed):
    """lime's own explainer on the same (normalised, H x W x C) image and the same segments."""
    image = x[0].permute(1, 2, 0).double().numpy()

    def classifier_fn(images):
        with torch.no_grad():
            batch = torch.from_numpy(images).permute(0, 3, 1, 2).float()
            return net(batch).softmax(dim=1).numpy()

    explainer = LimeImageExplainer(kernel_width=0.25, random_state=seed)
    explanation = explainer.explain_instance(
        image, classifier_fn, labels=(target,), top_labels=None, hide_color=None, num_samples=samples,
        segmentation_fn=lambda _image: segments, random_seed=seed,
    )
    weights = np.zeros(int(segments.max()) + 1)
    for feature, weight in explanation.local_exp[target]:
        weights[feature] = weight
    return weights, explanation.intercept[target]


def test_segments_equal_limes_quickshift():
    image = unit_image(chelsea()[0])
    reference = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=3)(image)
    assert np.array_equal(lime_segments(image, 4, 200, 0.2, seed=42), reference)
    assert len(np.unique(reference)) > 20


@pytest.mark.parametrize("seed", [0, 11])
def test_segment_weights_equal_limes_on_a_seeded_net(seed):
    net, x = seeded_net(), seeded_input(size=32)
    segments = np.arange(32 * 32).reshape(32, 32) // 8 % 4 + 4 * (np.arange(32)[:, None] // 8)  # 16 blocks
    params = method_get("lime").params_resolve({"samples": 300, "seed": seed})
    ours, intercept = lime_weights(net, x, 5, segments, params, batch_size=7)
    reference, reference_intercept = lime_reference(net, x, 5, segments, 300, seed)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-7)
    assert intercept == pytest.approx(reference_intercept, rel=1e-4)


def test_segment_weights_equal_limes_on_efficientnet_lite0():
    model, x = lite0(), chelsea()
    segments = lime_segments(unit_image(x[0]), 4, 200, 0.2, seed=42)
    params = method_get("lime").params_resolve({"samples": 48})
    ours, _ = lime_weights(model.net, x, 285, segments, params)
    reference, _ = lime_reference(model.net, x, 285, segments, 48, 0)
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-4 * np.abs(reference).max())


def test_map_is_the_segment_weights_and_defaults_are_limes():
    lime = method_get("lime")
    assert lime.params_resolve({}) == {
        "samples": 1000, "kernel_size": 4.0, "max_dist": 200.0, "ratio": 0.2, "kernel_width": 0.25, "seed": 0,
        "quickshift_seed": 42, "batch_size": 0,
    }
    net, x = seeded_net(), seeded_input(size=32)
    out = lime.attribute(net, x, torch.tensor([5]), lime.params_resolve({"samples": 100, "kernel_size": 2.0}))
    segments = lime_segments(unit_image(x[0]), 2.0, 200, 0.2, seed=42)
    coef, _ = lime_weights(net, x, 5, segments, lime.params_resolve({"samples": 100}))
    np.testing.assert_allclose(out.raw[0].numpy(), coef[segments], atol=1e-6)
    assert torch.equal(out.comparison, out.raw.clamp(min=0))


def test_map_changes_when_weights_are_randomised():
    lime, model, x = method_get("lime"), lite0(), chelsea()
    params = lime.params_resolve({"samples": 64})
    one = lime.attribute(model.net, x, torch.tensor([285]), params).raw
    other = lime.attribute(randomised_copy(model.net), x, torch.tensor([285]), params).raw
    correlation = np.corrcoef(one.ravel().numpy(), other.ravel().numpy())[0, 1]
    assert correlation < 0.5, correlation
