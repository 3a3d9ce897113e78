import numpy as np
import torch

from explain.methods import method_get
from explain.methods.rise import rise_grids, rise_masks, rise_saliency

from .perturbation_support import chelsea, lite0, seeded_input, seeded_net
from .rise_reference import RISEReference


def reference_saliency(net, x, target, grids, shifts, p1):
    explainer = RISEReference(torch.nn.Sequential(net, torch.nn.Softmax(dim=1)), tuple(x.shape[-2:]), gpu_batch=7)
    explainer.generate_masks(len(grids), grids.shape[-1], p1, grids.numpy(), shifts.numpy())
    with torch.no_grad():
        return explainer(x)[target], explainer.masks[:, 0]


def test_masks_equal_the_authors_skimage_masks():
    for size in [(32, 32), (30, 45)]:
        grids, shifts = rise_grids(20, 5, 0.5, size, seed=3)
        explainer = RISEReference(None, size)
        explainer.generate_masks(20, 5, 0.5, grids.numpy(), shifts.numpy())
        assert torch.allclose(rise_masks(grids, shifts, size), explainer.masks[:, 0], atol=1e-6)


def test_rise_equals_literal_port_on_a_seeded_net():
    net, x = seeded_net(), seeded_input(size=32)
    params = method_get("rise").params_resolve({"n_masks": 50, "s": 4, "p1": 0.3, "seed": 5, "batch_size": 8})
    ours = method_get("rise").attribute(net, x, torch.tensor([3]), params)
    grids, shifts = rise_grids(50, 4, 0.3, (32, 32), seed=5)
    reference, _ = reference_saliency(net, x, 3, grids, shifts, 0.3)
    assert ours.raw.shape == (1, 32, 32)
    assert torch.allclose(ours.raw[0], reference, rtol=1e-5, atol=1e-6)
    assert torch.equal(ours.raw, ours.comparison)


def test_rise_equals_literal_port_on_efficientnet_lite0():
    model, x = lite0(), chelsea()
    grids, shifts = rise_grids(24, 7, 0.5, (224, 224), seed=0)
    ours = rise_saliency(model.net, x, 285, grids, shifts) / 0.5
    reference, _ = reference_saliency(model.net, x, 285, grids, shifts, 0.5)
    assert torch.allclose(ours, reference, rtol=1e-4, atol=1e-6)


def test_default_parameters_are_the_papers():
    assert method_get("rise").params_resolve({}) == {"n_masks": 4000, "s": 7, "p1": 0.5, "seed": 0, "batch_size": 0}


def test_seed_reproduces_and_changes_the_map():
    net, x = seeded_net(), seeded_input(size=32)
    rise = method_get("rise")
    a = rise.attribute(net, x, torch.tensor([1]), rise.params_resolve({"n_masks": 30, "seed": 1})).raw
    b = rise.attribute(net, x, torch.tensor([1]), rise.params_resolve({"n_masks": 30, "seed": 1})).raw
    c = rise.attribute(net, x, torch.tensor([1]), rise.params_resolve({"n_masks": 30, "seed": 2})).raw
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_map_changes_when_weights_are_randomised():
    rise, x = method_get("rise"), seeded_input(size=32)
    params = rise.params_resolve({"n_masks": 2000, "s": 4})
    one = rise.attribute(seeded_net(0), x, torch.tensor([2]), params).raw
    again = rise.attribute(seeded_net(0), x, torch.tensor([2]), params).raw
    other = rise.attribute(seeded_net(7), x, torch.tensor([2]), params).raw
    assert torch.equal(one, again)
    # subtract the map of a constant score (the masks' coverage) so only the model's part is compared
    coverage = rise_saliency(lambda_net(), x, 0, *rise_grids(2000, 4, 0.5, (32, 32), 0)) / 0.5
    a, b = (one - coverage * one.mean() / coverage.mean()), (other - coverage * other.mean() / coverage.mean())
    correlation = np.corrcoef(a.ravel().numpy(), b.ravel().numpy())[0, 1]
    assert correlation < 0.5, correlation


def lambda_net():
    """A 'model' whose softmax is uniform: every masked input scores the same."""

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 10)

    return Constant()
