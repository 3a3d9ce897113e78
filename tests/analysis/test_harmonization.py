"""The Harmonization loss against a written-out numpy version of REFERENCE.md section 5."""
import numpy as np
import pytest
import torch

from analysis import harmonization as H


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
    logits, saliency = H.input_gradient_saliency(model, images, labels)
    parts = H.harmonization_loss(logits, labels, saliency, human, weights, list(model.parameters()))
    expected_ce = torch.nn.functional.cross_entropy(logits[:3], labels[:3], label_smoothing=0.1)
    assert torch.isclose(parts["cross_entropy"], expected_ce)
    assert torch.isclose(parts["weights_l2"], sum((p**2).sum() / 2 for p in model.parameters()))
    assert torch.isclose(parts["loss"], parts["cross_entropy"] + 1e-5 * parts["weights_l2"] + parts["alignment"])
    parts["alignment"].backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0  # second-order path
