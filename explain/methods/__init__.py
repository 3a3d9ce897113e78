"""Explanation methods by key. Each module holds one method; none imports Django."""
from .base import InvalidParams, Method, MethodOutput
from .fem import FEM
from .gradcam import GradCAM
from .gradient import Gradient
from .guided_backprop import GuidedBackprop
from .guided_gradcam import GuidedGradCAM
from .integrated_gradients import IntegratedGradients
from .lime import LIME
from .occlusion import Occlusion
from .rise import RISE
from .smoothgrad import SmoothGrad
from .xrai import XRAI

# One line per method, in the order of REFERENCE.md section 4: keys must be unique.
_ALL: tuple[Method, ...] = (
    Gradient(),
    SmoothGrad(),
    IntegratedGradients(),
    GuidedBackprop(),
    GradCAM(),
    GuidedGradCAM(),
    XRAI(),
    RISE(),
    LIME(),
    FEM(),
    Occlusion(),
)
METHODS: dict[str, Method] = {method.key: method for method in _ALL}
assert len(METHODS) == len(_ALL), "two methods share a key"


class UnknownMethod(ValueError):
    """The method key is not registered; the message lists the valid keys."""


def method_get(key: str) -> Method:
    try:
        return METHODS[key]
    except KeyError:
        raise UnknownMethod(f"unknown method {key!r}; valid methods: {', '.join(sorted(METHODS))}") from None


__all__ = ["METHODS", "InvalidParams", "Method", "MethodOutput", "UnknownMethod", "method_get"]
