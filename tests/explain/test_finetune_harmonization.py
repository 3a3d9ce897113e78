"""The Harmonization loss against a written-out numpy version of its definition; the input-gradient
penalty; the saliency target of an unlabelled image."""
import numpy as np
import pytest
import torch

from explain.finetune import harmonization as H
from explain.finetune.params import FinetuneParams
from explain.finetune.training import step_losses
from explain.zoo import SplitNet


def np_downsample_same(x):
    """TF conv2d(5x5 binomial, stride 2, padding SAME) on one H x W map, written out."""
    k1 = np.array([1, 4, 6, 4, 1], float) / 16
    kernel = np.outer(k1, k1)
    h, w = x.shape
    out_h, out_w = -(-h // 2), -(-w // 2)
    pad_h, pad_w = max((out_h - 1) * 2 + 5 - h, 0), max((out_w - 1) * 2 + 5 - w, 0)
    padded = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))
    return np.array([[(padded[2 * i : 2 * i + 5, 2 * j : 2 * j + 5] * kernel).sum() for j in range(out_w)] for i in range(out_h)])


@pytest.mark.parametrize("shape", [(16, 16), (15, 22), (224, 224)])
def test_downsample_is_tf_same_padding(shape):
    x = np.random.default_rng(0).random(shape)
    ours = H.downsample(torch.from_numpy(x)[None, None])[0, 0].numpy()
    assert np.allclose(ours, np_downsample_same(x), atol=1e-12)


def test_alignment_term_equals_the_written_out_formula():
    g = np.random.default_rng(1)
    s, h = g.random((3, 32, 40)), g.random((3, 32, 40)) ** 3
    weights = np.array([1.0, 0.0, 1.0])
    expected = 0.0
    for level in range(5):
        errors = []
        for b in range(3):
            sc = np.maximum((s[b] - s[b].mean()) / (s[b].std() + 1e-5), 0)
            hc = np.maximum((h[b] - h[b].mean()) / (h[b].std() + 1e-5), 0)
            hc = hc / (hc.max() + 1e-6) * (sc.max() + 1e-6)
            for _ in range(level):
                sc, hc = np_downsample_same(sc), np_downsample_same(hc)
            errors.append(weights[b] * (sc - hc) ** 2)
        expected += np.mean(errors)
    ours = H.alignment_term(torch.from_numpy(s), torch.from_numpy(h), torch.from_numpy(weights))
    assert float(ours) == pytest.approx(expected, rel=1e-10)
    mean_levels = H.alignment_term(torch.from_numpy(s), torch.from_numpy(h), torch.from_numpy(weights), level_reduction="mean")
    assert float(mean_levels) == pytest.approx(expected / 5, rel=1e-10)


def test_alignment_is_zero_for_matching_maps_or_zero_weights():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(2, 24, 24, generator=g, dtype=torch.float64)
    assert float(H.alignment_term(s, s * 7.0, torch.ones(2, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-12)
    h = torch.rand(2, 24, 24, generator=g, dtype=torch.float64)
    assert float(H.alignment_term(s, h, torch.zeros(2, dtype=torch.float64))) == 0.0


def test_the_loss_trains_the_model_through_its_input_gradients():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5))
    images, labels = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, -1])
    human = torch.zeros(4, 16, 16)
    human[:, 4:8, 4:8] = 1
    weights = torch.tensor([1.0, 1.0, 0.0, 1.0])
    logits, saliency, usable = H.input_gradient_saliency(model, images, labels)
    assert usable.tolist() == [1.0, 1.0, 1.0, 1.0]
    parts = H.harmonization_loss(logits, labels, saliency, human, weights, list(model.parameters()))
    expected_ce = torch.nn.functional.cross_entropy(logits[:3], labels[:3], label_smoothing=0.1)
    assert torch.isclose(parts["cross_entropy"], expected_ce)
    assert torch.isclose(parts["weights_l2"], sum((p**2).sum() / 2 for p in model.parameters()))
    assert torch.isclose(parts["loss"], parts["cross_entropy"] + 1e-5 * parts["weights_l2"] + parts["alignment"])
    parts["alignment"].backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0  # second-order path


def _head_net(favourite: int) -> SplitNet:
    """A seeded CNN whose head's bias makes class `favourite` the prediction for every input."""
    torch.manual_seed(0)
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus())
    head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 5))
    with torch.no_grad():
        head[2].bias.zero_()
        head[2].bias[favourite] = 100.0
    return SplitNet(features, head)


def _unlabelled_batch(n: int = 3) -> dict:
    g = torch.Generator().manual_seed(2)
    human = torch.zeros(n, 1, 16, 16)
    human[:, :, 4:9, 5:11] = 1.0
    return {"image": torch.rand(n, 3, 16, 16, generator=g), "label": torch.full((n,), -1), "human_map": human,
            "has_map": torch.ones(n)}


@pytest.mark.parametrize("loss", ["harmonization", "outside_gradient"])
def test_an_unlabelled_stimulus_never_trains_class_0(loss):
    """Label -1 used to be clamped to class 0: class 0's saliency was aligned with the human map. Now
    the predicted class (3 here) is explained and class 0's weights get no gradient at all."""
    net = _head_net(favourite=3)
    parts = step_losses(net, _unlabelled_batch(), FinetuneParams(loss=loss), 1.0, torch.device("cpu"))
    assert float(parts["cross_entropy"].detach()) == 0.0 and float(parts["alignment"].detach()) > 0
    parts["loss"].backward()
    linear = net.head[2]
    if loss == "harmonization":  # the saliency of class 3 only: class 0's row never enters the loss
        assert linear.weight.grad[0].abs().max() == 0 and linear.weight.grad[3].abs().max() > 0
    else:  # Ross et al. take the gradient of sum_k log p_k: every class, none singled out as class 0
        assert linear.weight.grad.abs().amax(dim=1).gt(0).all()
    assert net.features[0].weight.grad.abs().max() > 0


def test_unlabelled_skip_gives_no_alignment_term():
    net = _head_net(favourite=3)
    parts = step_losses(net, _unlabelled_batch(), FinetuneParams(unlabelled="skip"), 1.0, torch.device("cpu"))
    assert float(parts["alignment"].detach()) == 0.0
    parts["loss"].backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in net.parameters())


def test_saliency_targets_refuse_an_unknown_rule():
    with pytest.raises(ValueError, match="predicted, skip"):
        H.saliency_targets(torch.zeros(1, 3), torch.tensor([-1]), unlabelled="zero")


def test_the_alignment_gradient_reaches_the_weights_and_a_detached_saliency_would_not():
    net = _head_net(favourite=1)
    batch = _unlabelled_batch()
    batch["label"] = torch.tensor([0, 2, 4])
    logits, saliency, usable = H.input_gradient_saliency(net, batch["image"], batch["label"])
    align = H.alignment_term(saliency, batch["human_map"][:, 0], usable)
    (grad,) = torch.autograd.grad(align, net.features[0].weight, retain_graph=True)
    assert grad.abs().max() > 0
    detached = H.alignment_term(saliency.detach(), batch["human_map"][:, 0], usable)
    assert not detached.requires_grad  # the pitfall: nothing would train


def test_outside_gradient_penalty_equals_the_written_out_formula():
    g = np.random.default_rng(3)
    grads, human = g.normal(size=(2, 3, 8, 8)), g.random((2, 8, 8))
    human[1] = 0.0  # no map: A = 1 everywhere, and its weight is 0
    weights = np.array([1.0, 0.0])
    outside = 1 - human[0] / human[0].max()
    expected = ((outside[None] * grads[0]) ** 2).sum() * weights[0] / 2
    ours = H.outside_gradient_penalty(torch.from_numpy(grads), torch.from_numpy(human), torch.from_numpy(weights))
    assert float(ours) == pytest.approx(expected, rel=1e-12)


def test_the_control_runs_a_plain_forward_pass():
    net = _head_net(favourite=1)
    batch = _unlabelled_batch()
    batch["label"] = torch.tensor([0, 2, 4])
    parts = step_losses(net, batch, FinetuneParams(), 0.0, torch.device("cpu"))
    assert set(parts) == {"loss", "cross_entropy"}
    expected = torch.nn.functional.cross_entropy(net(batch["image"]), batch["label"], label_smoothing=0.1)
    assert torch.isclose(parts["loss"], expected)
