"""A trainable copy of a zoo model: BatchNorm kept, every parameter trainable, the cached explanation
model untouched by training it."""
import pytest
import torch
from torch import nn

from explain.finetune.evaluation import gradcam_map
from explain.finetune.params import FinetuneParams
from explain.finetune.training import optimizer_for, step_losses
from explain.zoo import REGISTRY, model_load, model_trainable, user_models_register
from tests.explain.nets import small_net


def _batch(size: int, n: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    human = torch.zeros(n, 1, size, size)
    human[:, :, size // 4 : size // 2, size // 3 : 2 * size // 3] = 1.0
    return {"image": torch.randn(n, 3, size, size, generator=g), "label": torch.tensor([285, 967])[:n],
            "human_map": human, "has_map": torch.ones(n)}


def test_efficientnet_trains_as_a_copy_and_the_cached_model_stays_as_it_was():
    cached = model_load("efficientnet_lite0", torch.device("cpu"))
    before = {k: v.clone() for k, v in cached.net.state_dict().items()}
    trainable = model_trainable("efficientnet_lite0")
    net = trainable.net
    assert net.training and all(p.requires_grad for p in net.parameters())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 49  # not folded
    assert not any(p.requires_grad for p in cached.net.parameters()) and not cached.net.training
    assert (trainable.input_size, trainable.mean, trainable.weights_hash) == (cached.input_size, cached.mean, cached.weights_hash)
    x = _batch(224)["image"]
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), cached.net(x), atol=1e-3)  # the same function, BatchNorm unfolded
    optimizer = optimizer_for(net, FinetuneParams(learning_rate=1e-2))
    parts = step_losses(net, _batch(224), FinetuneParams(), 1.0, torch.device("cpu"))
    parts["loss"].backward()
    optimizer.step()
    assert net.features.net._conv_stem.weight.grad.abs().max() > 0
    assert model_load("efficientnet_lite0", torch.device("cpu")) is cached
    assert all(torch.equal(before[k], v) for k, v in cached.net.state_dict().items())
    assert not torch.equal(net.features.net._conv_stem.weight, cached.net.features.net._conv_stem.weight)
    cam = gradcam_map(net, x[:1], torch.tensor([285]))
    assert cam.shape == (1, 224, 224) and cam.max() > 0


def test_a_user_models_trainable_copy_keeps_its_features_layer(tmp_path):
    net = small_net(seed=4)
    torch.save(net.state_dict(), tmp_path / "tiny.pth")
    (tmp_path / "models.json").write_text(
        '{"tiny_train": {"state_dict": "%s", "architecture": "tests.explain.nets:small_net", "features": "features",'
        ' "classes": ["a","b","c","d","e","f","g","h","i","j"], "input_size": [32, 32]}}' % (tmp_path / "tiny.pth"))
    keys = user_models_register(tmp_path / "models.json")
    try:
        model = model_trainable("tiny_train")
        assert model.net.training and all(p.requires_grad for p in model.net.parameters())
        assert model.net is not model_trainable("tiny_train").net
        x = torch.randn(1, 3, 32, 32)
        assert torch.allclose(model.net.eval()(x), net(x)) and gradcam_map(model.net, x, torch.tensor([1])).shape == (1, 32, 32)
    finally:
        for key in keys:
            REGISTRY.pop(key, None)


def test_an_unknown_key_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        model_trainable("nope")
