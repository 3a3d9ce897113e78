"""Explanation methods by key: the torch implementations of `explain.method_catalogue`'s specs. Each
module holds one method; none imports Django."""
from ..method_catalogue import METHOD_SPECS, InvalidParams, UnknownMethod
from .base import Method, MethodOutput
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

# One implementation per catalogued method, in the catalogue's order.
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
assert list(METHODS) == list(METHOD_SPECS), "every catalogued method has exactly one implementation, in order"


def method_get(key: str) -> Method:
    try:
        return METHODS[key]
    except KeyError:
        raise UnknownMethod(f"unknown method {key!r}; valid methods: {', '.join(sorted(METHODS))}") from None


__all__ = ["METHODS", "InvalidParams", "Method", "MethodOutput", "UnknownMethod", "method_get"]
