"""One contract for every registered method (part of the registry, whatever it holds), on a small
seeded ReLU network seen through the whole pipeline: image in, maps at the stimulus resolution out."""
import ast
import inspect

import numpy as np
import pytest
import torch
from PIL import Image

import explain.methods as methods_package
from explain.methods import METHODS, InvalidParams, method_get
from explain.pipeline import explain_image
from explain.zoo import ZooModel
from tests.explain.nets import hooks_left, small_net


@pytest.fixture(scope="module")
def tiny_model() -> ZooModel:
    return ZooModel(
        key="tiny",
        net=small_net(),
        input_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        class_names=tuple(f"class {i}" for i in range(10)),
        weights_hash="0" * 16,
        device=torch.device("cpu"),
    )


@pytest.fixture(scope="module")
def stimulus() -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
    pixels[10:30, 15:40] = (200, 40, 40)  # an object
    return Image.fromarray(pixels)


@pytest.mark.parametrize("key", sorted(METHODS))
def test_every_method_keeps_the_contract(key, tiny_model, stimulus):
    method = method_get(key)
    assert method.key == key and method.version and isinstance(method.signed, bool)
    assert set(method.docs) == set(method.defaults), f"{key}: every parameter is documented"
    e = explain_image(tiny_model, stimulus, key, target=3)
    assert e.raw.shape == e.comparison.shape == (40, 52)
    assert e.raw.dtype == e.comparison.dtype == np.float32
    assert np.isfinite(e.raw).all() and np.isfinite(e.comparison).all()
    assert (e.comparison >= 0).all()
    # Some signal: the raw map is not all zero. (The comparison map may be: on this random tiny net every
    # occlusion window or LIME segment can *raise* the score, and their comparison map keeps the evidence for.)
    assert np.abs(e.raw).max() > 0 and (e.comparison.max() > 0 or method.signed)
    if not method.signed:
        assert (e.raw >= 0).all()
    assert e.target == 3 and 0 <= e.predicted < 10 and 0 < e.predicted_probability <= 1
    assert e.params == method.params_resolve({}) and e.method_version == method.version
    assert hooks_left(tiny_model.net) == 0
    # the same call gives the same map (seeded)
    again = explain_image(tiny_model, stimulus, key, target=3)
    assert np.allclose(again.raw, e.raw, atol=1e-6 * max(1.0, float(np.abs(e.raw).max())))


@pytest.mark.parametrize("key", sorted(METHODS))
def test_an_unknown_parameter_is_refused_listing_the_valid_ones(key):
    method = method_get(key)
    with pytest.raises(InvalidParams) as error:
        method.params_resolve({"no_such_parameter": 1})
    message = str(error.value)
    assert "no_such_parameter" in message
    assert all(name in message for name in method.defaults) or "(none)" in message


@pytest.mark.parametrize("key", sorted(METHODS))
def test_every_method_batches_stimuli_like_one_at_a_time(key):
    net = small_net()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    method = method_get(key)
    params = method.params_resolve({})
    both = method.attribute(net, x, torch.tensor([1, 2]), params)
    second = method.attribute(net, x[1:], torch.tensor([2]), params)
    assert both.raw.shape[0] == 2 and both.comparison.shape[0] == 2
    scale = max(1e-12, float(second.raw.abs().max()))
    assert torch.allclose(both.raw[1], second.raw[0], atol=1e-4 * scale)


def test_methods_import_no_django():
    for path in sorted(__import__("pathlib").Path(inspect.getfile(methods_package)).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any(name.split(".")[0] == "django" for name in names), path
