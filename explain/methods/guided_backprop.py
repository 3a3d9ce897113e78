"""Guided Backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller, ICLR 2015 workshop,
"Striving for Simplicity: The All Convolutional Net").

The gradient of the target logit w.r.t. the input, where every ReLU-family activation module passes
the gradient g only where its forward input a was in the active range and g > 0:
    nn.ReLU:  grad_in = g * [a > 0] * [g > 0]
    nn.ReLU6: grad_in = g * [0 < a < 6] * [g > 0]   (EfficientNet-Lite0; Captum patches nn.ReLU
              only and silently returns the plain gradient on such networks)
The rule is applied by hooks that exist only inside `guided()` (removed on exit, also on error);
a module used twice (EfficientNet's shared `_swish`) is guided at each use. Functional activations
(F.relu in a forward()) cannot be seen and are not guided; a network with no ReLU-family module is
refused rather than silently explained with the plain gradient.

raw: at each pixel the channel of largest magnitude, sign kept (B x h x w, model input pixels);
comparison: its absolute value (max over channels of |.|, as Captum's `GuidedBackprop` then
`.abs().amax(1)` on a ReLU network). No parameters; 1 forward + 1 backward pass.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from ..method_catalogue import METHOD_SPECS
from .base import InvalidParams, Method, MethodOutput, channel_extreme, input_gradients

# the activation modules guided (and their subclasses, such as fusion.ReLU6InPlace); their own backward
# masks by the active range (ReLU a > 0, ReLU6 0 < a < 6)
GUIDED_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


class Guidance:
    """What `guided()` yields: how many activation modules are guided, and whether the rule is applied
    (`active`; a caller may switch it off for a backward pass that must see the plain gradient, as
    Guided Grad-CAM does for its CAM weights, and on again, over the same forward pass)."""

    def __init__(self, modules: int):
        self.modules = modules
        self.active = True


def guided_modules(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, GUIDED_TYPES)]


@contextlib.contextmanager
def guided(net: nn.Module) -> Iterator[Guidance]:
    """Inside the block every nn.ReLU / nn.ReLU6 of `net` back-propagates by the guided rule (for a
    forward pass run inside the block). Every module hook is removed on exit.

    How: a forward hook puts a hook on each activation's output tensor that clamps the gradient
    arriving there at 0; the activation's own backward then masks it by its active range, giving
    g_in = max(g, 0) * [lower < a < upper], the rule above. Nothing is recomputed in the forward pass,
    and the tensor hook sees the total gradient of an output used more than once."""
    modules = guided_modules(net)
    if not modules:
        kinds = ", ".join(kind.__name__ for kind in GUIDED_TYPES)
        raise InvalidParams(f"guided backprop needs activation modules ({kinds}); the model has none")
    guidance = Guidance(len(modules))

    def clamp(grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0) if guidance.active else grad

    def hook(_module, _inputs, output):
        # registered now, on the node that made `output` (an in-place activation's output is its
        # input tensor; a later in-place change of it must not move the hook)
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(clamp)

    handles = []
    try:
        for module in modules:
            handles.append(module.register_forward_hook(hook))
        yield guidance
    finally:
        for handle in handles:
            handle.remove()


def guided_gradients(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(guided d logit_target / d x, B x C x H x W; logits)."""
    with guided(net):
        return input_gradients(net, x, target)


class GuidedBackprop(Method):
    spec = METHOD_SPECS["guided_backprop"]
    batches_across_inputs = True

    def attribute(self, net, x, target, params) -> MethodOutput:
        grads, logits = guided_gradients(net, x, target)
        raw = channel_extreme(grads)
        return MethodOutput(raw=raw, comparison=raw.abs(), logits=logits)
