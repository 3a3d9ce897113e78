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

from ..method_catalogue import InvalidParams, MethodSpec
from .batching import fast_layout

__all__ = ["InvalidParams", "Method", "MethodOutput"]


@dataclass
class MethodOutput:
    """raw: B x h x w float, signed where the method is signed (the stored, unprocessed map).
    comparison: B x h x w float >= 0, the evidence map scored against humans (gradient-type: max over channels of |.|; others: negatives clipped to 0).
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
    """An implementation of one catalogued method (`explain.method_catalogue`): its key, version,
    defaults and parameter checks come from `spec`; the class adds the computation."""

    spec: ClassVar[MethodSpec]
    # True when `attribute` is one pass over the batch whose rows do not interact (each row's map
    # depends on that row and its target only; facts of one row go in `row_meta`): then several
    # stimuli can share one batch (`pipeline.explain_images`). False for methods whose own passes
    # already fill the batch.
    batches_across_inputs: ClassVar[bool] = False

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def signed(self) -> bool:
        return self.spec.signed

    @property
    def defaults(self) -> dict[str, Any]:
        return self.spec.defaults

    @property
    def docs(self) -> dict[str, str]:
        return self.spec.docs

    def params_resolve(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults filled in, unknown names refused, values coerced and checked (the catalogue's rule)."""
        return self.spec.params_resolve(params)

    def attribute(self, net: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any]) -> MethodOutput:
        raise NotImplementedError


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

    Its absolute value is the gradient-type comparison map (max over channels of abs), so the stored raw map keeps the sign the comparison map drops."""
    # max/min then a select: torch's argmax over the channel dimension costs ~11 ms on a 3 x 224 x 224
    # CPU map (it was a third of the gradient method's time); this costs ~0.3 ms. On an exact tie of
    # +v and -v the positive value is kept.
    high, low = attributions.amax(dim=1), attributions.amin(dim=1)
    return torch.where(high >= -low, high, low)
