"""The contract every explanation method keeps (Captum-style: one file per method, one required method).

A method receives a batch already resized to the model's input size and normalised, and the target
classes; it returns maps at any spatial size (the pipeline upsamples them to the stimulus). It never
touches Django, files or the database.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from .batching import fast_layout


class InvalidParams(ValueError):
    """A parameter is unknown or has a bad value; the message lists the valid ones."""


@dataclass
class MethodOutput:
    """raw: B x h x w float, signed where the method is signed (the stored, unprocessed map).
    comparison: B x h x w float >= 0, the evidence map scored against humans (REFERENCE.md section 3).
    logits: B x classes from a clean forward pass, when the method computed one anyway."""

    raw: torch.Tensor
    comparison: torch.Tensor
    logits: torch.Tensor | None = None
    # method-specific facts recorded with every row's map (JSON-able)
    meta: dict[str, Any] = field(default_factory=dict)
    # facts of each row's own map (one JSON-able dict per row, e.g. IG's steps used and completeness
    # gap), recorded with that map on top of `meta`; None when there are none
    row_meta: list[dict[str, Any]] | None = None


class Method:
    key: ClassVar[str]
    version: ClassVar[str]
    signed: ClassVar[bool]
    # name -> default; the type of the default is the parameter's type (None means "any").
    defaults: ClassVar[dict[str, Any]]
    # Parameters whose default is None ("the method chooses") that take a value of one type when
    # given: name -> a value of that type (IG's steps: None, or an int). None given stays None.
    optional_types: ClassVar[dict[str, Any]] = {}
    docs: ClassVar[dict[str, str]] = {}
    # True when `attribute` is one pass over the batch whose rows do not interact (each row's map
    # depends on that row and its target only; facts of one row go in `row_meta`): then several
    # stimuli can share one batch (`pipeline.explain_images`). False for methods whose own passes
    # already fill the batch.
    batches_across_inputs: ClassVar[bool] = False

    def params_resolve(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults filled in, unknown names refused, values coerced to the default's type."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "(none)"
            raise InvalidParams(f"unknown parameter(s) {', '.join(unknown)} for {self.key}; valid: {valid}")
        resolved = dict(self.defaults)
        for name, value in params.items():
            if name in self.optional_types:
                resolved[name] = None if value is None else _coerce(self.key, name, value, self.optional_types[name])
            else:
                resolved[name] = _coerce(self.key, name, value, self.defaults[name])
        self.params_check(resolved)
        return resolved

    def params_check(self, params: dict[str, Any]) -> None:
        """Range checks beyond types; raise InvalidParams."""

    def attribute(self, net: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any]) -> MethodOutput:
        raise NotImplementedError


def _coerce(method: str, name: str, value: Any, default: Any) -> Any:
    if default is None:
        return value
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            result = float(value)
            if result != result or result in (float("inf"), float("-inf")):
                raise ValueError(value)
            return result
        return kind(value)
    except (TypeError, ValueError):
        raise InvalidParams(f"{method}: parameter {name}={value!r} must be of type {kind.__name__}") from None


def module_get(net: nn.Module, dotted: str) -> nn.Module:
    """The sub-module at a dotted path ('features', 'net._blocks.15'); InvalidParams if absent."""
    try:
        return net.get_submodule(dotted)
    except AttributeError:
        names = [name for name, _ in net.named_modules() if name and name.count(".") <= 1]
        raise InvalidParams(f"no layer {dotted!r} in the model; top-level layers: {', '.join(names[:40])}") from None


@contextlib.contextmanager
def activations_captured(layer: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Capture `layer`'s output as a leaf that requires grad; gradients w.r.t. it can then be taken.

    The forward hook is always removed on exit (no hook is left behind, even on error).
    """
    store: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        leaf = output.detach().requires_grad_(True)
        store["activations"] = leaf
        # the network goes on with a copy: an in-place operation after the layer (EfficientNet's
        # in-place ReLU6, torchvision ResNet's `out += identity`) must neither overwrite what was
        # captured nor modify a leaf that requires grad
        return leaf.clone()

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def target_scores(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The target class's pre-softmax logit for each row."""
    return logits.gather(1, target.view(-1, 1)).squeeze(1)


# --- shared helpers of the gradient family (additive) ------------------------------------------

def input_gradients(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d logit_target / d x, logits) for a batch; x is not modified. Shapes B x C x H x W, B x K."""
    with torch.enable_grad():
        leaf = fast_layout(x.detach()).requires_grad_(True)
        logits = net(leaf)
        (grads,) = torch.autograd.grad(target_scores(logits, target).sum(), leaf)
    return grads, logits.detach()


def channel_extreme(attributions: torch.Tensor) -> torch.Tensor:
    """B x C x H x W -> B x H x W: at each pixel the channel value of largest magnitude, sign kept.

    Its absolute value is the gradient-type comparison map (max over channels of abs, REFERENCE.md
    section 3), so the stored raw map keeps the sign the comparison map drops."""
    # max/min then a select: torch's argmax over the channel dimension costs ~11 ms on a 3 x 224 x 224
    # CPU map (it was a third of the gradient method's time); this costs ~0.3 ms. On an exact tie of
    # +v and -v the positive value is kept.
    high, low = attributions.amax(dim=1), attributions.amin(dim=1)
    return torch.where(high >= -low, high, low)
