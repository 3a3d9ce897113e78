"""Gradient saliency (Simonyan, Vedaldi & Zisserman, ICLR 2014 workshop, "Deep Inside Convolutional
Networks: Visualising Image Classification Models and Saliency Maps").

One forward and one backward pass: g = d logit_c / d x (the pre-softmax score of the target class).
raw: at each pixel the channel of g with the largest magnitude, sign kept (B x h x w, model input
pixels, signed). comparison: max over channels of |g| (= Captum `Saliency(abs=True)` then `.amax(1)`).
No parameters.
"""
from __future__ import annotations

from ..method_catalogue import METHOD_SPECS
from .base import Method, MethodOutput, channel_extreme, input_gradients


class Gradient(Method):
    spec = METHOD_SPECS["gradient"]
    batches_across_inputs = True

    def attribute(self, net, x, target, params) -> MethodOutput:
        grads, logits = input_gradients(net, x, target)
        raw = channel_extreme(grads)
        return MethodOutput(raw=raw, comparison=raw.abs(), logits=logits)
