"""Guided Backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller, ICLR 2015 workshop,
"Striving for Simplicity: The All Convolutional Net").

The gradient of the target logit w.r.t. the input, where every ReLU-family activation module passes
the gradient g only where its forward input a was in the active range and g > 0:
    nn.ReLU:  grad_in = g * [a > 0] * [g > 0]
    nn.ReLU6: grad_in = g * [0 < a < 6] * [g > 0]   (EfficientNet-Lite0; Captum patches nn.ReLU
              only and silently returns the plain gradient on such networks)
Activations are swapped for the guided rule by forward hooks that exist only inside `guided()`
(removed on exit, also on error); a module used twice (EfficientNet's shared `_swish`) is guided
at each use. Functional activations (F.relu in a forward()) cannot be seen and are not guided; a
network with no ReLU-family module is refused rather than silently explained with the plain gradient.

raw: at each pixel the channel of largest magnitude, sign kept (B x h x w, model input pixels);
comparison: its absolute value (max over channels of |.|, as Captum's `GuidedBackprop` then
`.abs().amax(1)` on a ReLU network). No parameters; 1 forward + 1 backward pass.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from .base import InvalidParams, Method, MethodOutput, channel_extreme, input_gradients

# module type -> (lower, upper) of the active range; upper None means unbounded
GUIDED_RANGES: dict[type[nn.Module], tuple[float, float | None]] = {nn.ReLU: (0.0, None), nn.ReLU6: (0.0, 6.0)}


class _GuidedClamp(torch.autograd.Function):
    """Forward: clamp(a, lower, upper). Backward: g * [lower < a < upper] * [g > 0]."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, lower: float, upper: float | None) -> torch.Tensor:
        ctx.save_for_backward(a)
        ctx.bounds = (lower, upper)
        return a.clamp(min=lower, max=upper)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (a,) = ctx.saved_tensors
        lower, upper = ctx.bounds
        active = a > lower
        if upper is not None:
            active &= a < upper
        return g.clamp(min=0) * active, None, None


def guided_modules(net: nn.Module) -> list[tuple[nn.Module, tuple[float, float | None]]]:
    return [(m, GUIDED_RANGES[type(m)]) for m in net.modules() if type(m) in GUIDED_RANGES]


@contextlib.contextmanager
def guided(net: nn.Module) -> Iterator[int]:
    """Inside the block every nn.ReLU / nn.ReLU6 of `net` back-propagates by the guided rule.
    Yields the number of modules guided. Every hook is removed on exit."""
    modules = guided_modules(net)
    if not modules:
        kinds = ", ".join(kind.__name__ for kind in GUIDED_RANGES)
        raise InvalidParams(f"guided backprop needs activation modules ({kinds}); the model has none")
    handles = []
    try:
        for module, (lower, upper) in modules:
            # An in-place activation already overwrote its input with the output; the active-range
            # test gives the same answer on either (clamping maps the inactive range to its ends).
            def hook(_module, inputs, _output, lower=lower, upper=upper):
                return _GuidedClamp.apply(inputs[0], lower, upper)

            handles.append(module.register_forward_hook(hook))
        yield len(modules)
    finally:
        for handle in handles:
            handle.remove()


def guided_gradients(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(guided d logit_target / d x, B x C x H x W; logits)."""
    with guided(net):
        return input_gradients(net, x, target)


class GuidedBackprop(Method):
    key = "guided_backprop"
    version = "1"
    signed = True
    batches_across_inputs = True
    defaults: dict = {}
    docs: dict = {}

    def attribute(self, net, x, target, params) -> MethodOutput:
        grads, logits = guided_gradients(net, x, target)
        raw = channel_extreme(grads)
        return MethodOutput(raw=raw, comparison=raw.abs(), logits=logits)
