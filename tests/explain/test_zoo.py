"""The model registry: torchvision models refused clearly here, researchers' models run end to end."""
import json

import numpy as np
import pytest
import torch

from explain.model_catalogue import InvalidModelConfig
from explain.pipeline import InvalidTarget, explain_image
from explain.zoo import REGISTRY, ModelUnavailable, model_load, model_weights_hash, user_models_register
from studyserver.researcher.demo import demo_photo
from tests.explain.nets import small_net


@pytest.mark.parametrize("key", ["resnet50", "vgg16", "inception_v3"])
def test_torchvision_models_name_the_missing_package_and_weights_file(key, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelUnavailable, match=rf"torchvision.*{tmp_path}/hub/checkpoints/{key.split('_')[0]}"):
        model_weights_hash(key)
    with pytest.raises(ModelUnavailable, match="torchvision"):
        model_load(key)


@pytest.fixture
def user_models(tmp_path):
    """A tiny net saved both ways: TorchScript, and a state dict with its architecture import path."""
    net = small_net(seed=4)
    torch.jit.save(torch.jit.script(net), tmp_path / "tiny.pt")
    torch.save(net.state_dict(), tmp_path / "tiny.pth")
    (tmp_path / "classes.txt").write_text("\n".join(f"thing {i}" for i in range(10)))
    common = {"input_size": [32, 40], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    spec = {
        "tiny_script": {"torchscript": str(tmp_path / "tiny.pt"), "classes": str(tmp_path / "classes.txt"), **common},
        "tiny_state": {
            "state_dict": str(tmp_path / "tiny.pth"),
            "architecture": "tests.explain.nets:small_net",
            "architecture_kwargs": {"seed": 0},
            "features": "features",
            "classes": [f"thing {i}" for i in range(10)],
            **common,
        },
    }
    (tmp_path / "models.json").write_text(json.dumps(spec))
    keys = user_models_register(tmp_path / "models.json")
    yield net
    for key in keys:
        REGISTRY.pop(key, None)


@pytest.mark.parametrize("key,method", [("tiny_script", "gradient"), ("tiny_state", "gradcam"), ("tiny_state", "guided_backprop")])
def test_a_user_model_runs_through_the_pipeline(user_models, key, method):
    model = model_load(key)
    assert model.input_size == (32, 40) and model.class_names[3] == "thing 3" and not model.net.training
    image = demo_photo("coffee.png")
    e = explain_image(model, image, method, target=3)
    assert e.raw.shape == (image.height, image.width) and np.isfinite(e.raw).all() and e.comparison.max() > 0
    assert e.model == key and len(e.weights_hash) == 16
    # the loaded weights are the saved ones, not a fresh initialisation
    x = torch.randn(1, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(model.net(x), user_models(x), atol=1e-6)
    with pytest.raises(InvalidTarget, match=r"0\.\.9"):
        explain_image(model, image, method, target=10)


def test_a_torchscript_model_refuses_hook_methods_clearly(user_models):
    from explain.methods import InvalidParams

    with pytest.raises(InvalidParams, match="no layer 'features'"):
        explain_image(model_load("tiny_script"), demo_photo("coffee.png"), "gradcam")


def test_bad_user_model_files_are_refused_naming_the_problem(tmp_path):
    cases = [
        ({"m": {"classes": ["a"]}}, "exactly one of torchscript or state_dict"),
        ({"m": {"state_dict": "x.pth", "classes": ["a"]}}, "needs architecture"),
        ({"m": {"torchscript": "x.pt"}}, "classes is required"),
        ({"m": {"torchscript": "x.pt", "classes": ["a"], "size": 3}}, "unknown field.*size"),
        ({"m": {"torchscript": "x.pt", "classes": ["a"], "mean": [1, 2]}}, "mean must be 3 numbers"),
        ({"efficientnet_lite0": {"torchscript": "x.pt", "classes": ["a"]}}, "built-in model key"),
    ]
    for spec, message in cases:
        path = tmp_path / "models.json"
        path.write_text(json.dumps(spec))
        with pytest.raises(InvalidModelConfig, match=message):
            user_models_register(path)
    path.write_text(json.dumps({"gone": {"torchscript": str(tmp_path / "missing.pt"), "classes": ["a"]}}))
    user_models_register(path)
    try:
        with pytest.raises(ModelUnavailable, match="missing.pt does not exist"):
            model_load("gone")
    finally:
        REGISTRY.pop("gone")
