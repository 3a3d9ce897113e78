"""FEM, the Feature Explanation Method (Fuad, Martin, Giot, Bourqui, Benois-Pineau and Zemmari,
IPTA 2020, "Features Understanding in 3D CNNs for Actions Recognition in Video"), as the authors'
code computes it.

On the activations A (C x h x w) of the last conv block: for each channel k, mu_k and sigma_k are the
mean and the population standard deviation (ddof=0, as numpy/Keras) over h x w; the binary map
B_k = A_k > mu_k + K sigma_k (K = 2; empty for a constant channel, as in exact arithmetic); FEM = sum_k mu_k B_k, divided by its maximum (an all-zero map
stays zero). Class-agnostic (the target is not used), one forward pass, no gradient. (pytorch-grad-cam's
"FEM" is a different formula.)

raw = comparison = FEM at the layer's resolution (non-negative for post-ReLU activations; the pipeline
upsamples it bilinearly to the stimulus). Default layer `features`: the conventional last conv map
(on EfficientNet-Lite0 the post-ReLU6 1280 x 7 x 7 output of `extract_features`).
"""
from __future__ import annotations

import torch

from ..method_catalogue import METHOD_SPECS
from .base import InvalidParams, Method, MethodOutput, activations_captured, module_get
from .batching import fast_layout


def fem_map(activations: torch.Tensor, k: float) -> torch.Tensor:
    """B x C x h x w -> B x h x w, max-normalised per map."""
    mean = activations.mean(dim=(2, 3), keepdim=True)
    # population std in two passes, as numpy computes it (torch's std over two dims took ~1 ms for
    # 4 x 1280 x 7 x 7, ~5% of FEM on a batch of 4 images; this takes ~0.1 ms)
    std = (activations - mean).square().mean(dim=(2, 3), keepdim=True).sqrt()
    # a constant channel has nothing above its mean (exactly); rounding in the mean must not say otherwise
    varies = activations.amax(dim=(2, 3), keepdim=True) > activations.amin(dim=(2, 3), keepdim=True)
    binary = ((activations > mean + k * std) & varies).to(activations.dtype)
    fem = (binary * mean).sum(dim=1)
    peak = fem.flatten(1).max(dim=1).values.view(-1, 1, 1)
    return torch.where(peak != 0, fem / torch.where(peak != 0, peak, torch.ones_like(peak)), fem)


class FEM(Method):
    spec = METHOD_SPECS["fem"]
    batches_across_inputs = True

    def attribute(self, net, x, target, params) -> MethodOutput:
        layer = module_get(net, params["layer"])
        with torch.no_grad(), activations_captured(layer) as store:
            logits = net(fast_layout(x))
        activations = store["activations"].detach().contiguous()
        if activations.dim() != 4:
            shape = tuple(activations.shape)
            raise InvalidParams(f"layer {params['layer']!r} outputs shape {shape}; FEM needs N x C x H x W")
        fem = fem_map(activations.float(), params["k"])
        return MethodOutput(raw=fem, comparison=fem.clamp(min=0), logits=logits)
