import numpy as np
import pytest
import torch

from explain.faithfulness import auc, blur_kernel, insertion_deletion

from .perturbation_support import chelsea, lite0, seeded_input, seeded_net
from .rise_reference import CausalMetric, blur_substrate, gkern


def reference_curves(net, x, saliency, step):
    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=1))
    hw = x.shape[-2] * x.shape[-1]
    insertion = CausalMetric(model, "ins", step, blur_substrate(11, 5), hw).single_run(x.clone(), saliency)
    deletion = CausalMetric(model, "del", step, torch.zeros_like, hw).single_run(x.clone(), saliency)
    return insertion, deletion


def test_blur_kernel_is_the_authors():
    assert torch.equal(blur_kernel(11, 5), gkern(11, 5))


@pytest.mark.parametrize("step", [32, 50, 7])
def test_curves_equal_the_literal_causal_metric_on_a_seeded_net(step):
    net, x = seeded_net(), seeded_input(size=32)
    saliency = np.random.default_rng(step).random((32, 32))  # tie-free
    target = int(net(x).argmax())  # the authors score the top class
    ins_auc, del_auc, curves = insertion_deletion(net, x, saliency, target, step=step, batch_size=5)
    insertion, deletion = reference_curves(net, x, saliency, step)
    assert len(curves.insertion) == len(insertion) == -(-1024 // step) + 1
    np.testing.assert_allclose(curves.insertion, insertion, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(curves.deletion, deletion, rtol=1e-5, atol=1e-7)
    assert ins_auc == pytest.approx(auc(insertion)) and del_auc == pytest.approx(auc(deletion))


def test_equals_the_literal_causal_metric_on_efficientnet_lite0_with_coarse_steps():
    model, x = lite0(), chelsea()
    saliency = np.random.default_rng(0).random((224, 224))
    _, _, curves = insertion_deletion(model.net, x, saliency, 285, step=224 * 28)
    insertion, deletion = reference_curves(model.net, x, saliency, 224 * 28)
    assert len(insertion) == 9
    np.testing.assert_allclose(curves.insertion, insertion, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(curves.deletion, deletion, rtol=1e-3, atol=1e-5)


def test_a_good_map_beats_its_inverse():
    """Deleting what the model uses first drops the score faster than deleting it last."""
    model, x = lite0(), chelsea()
    from explain.methods import method_get

    cam = method_get("gradcam").attribute(model.net, x, torch.tensor([285]), {"layer": "features"}).comparison[0]
    good_ins, good_del, _ = insertion_deletion(model.net, x, cam, 285, step=224 * 16)
    bad_ins, bad_del, _ = insertion_deletion(model.net, x, -cam, 285, step=224 * 16)
    assert good_del < bad_del and good_ins > bad_ins


def test_default_step_is_one_row():
    net, x = seeded_net(), seeded_input(size=32)
    _, _, curves = insertion_deletion(net, x, torch.rand(16, 16), 0)
    assert curves.step == 32 and len(curves.insertion) == 33
