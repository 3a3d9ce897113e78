"""SmoothGrad (Smilkov, Thorat, Kim, Viegas & Wattenberg, 2017, "SmoothGrad: removing noise by
adding noise").

The gradient map averaged over `n` noisy copies x + N(0, sigma^2), sigma = noise * (x.max - x.min)
per image (in the model's input units, as Captum's `NoiseTunnel` stdevs are absolute). As Captum's
`NoiseTunnel(Saliency(abs=True))`: |d logit_c / d x| is averaged over the copies per channel, then the
maximum over channels is taken. raw = comparison (non-negative, B x h x w, model input pixels).
The copies are passed `batch_size_for(device)` rows at a time (n forward + backward passes).
The noise is drawn from a CPU generator seeded with `seed`, so a map does not depend on the device,
the batch it was computed in, or the global RNG.
"""
from __future__ import annotations

import torch

from ..method_catalogue import METHOD_SPECS
from .base import Method, MethodOutput, input_gradients
from .batching import batch_size_for


class SmoothGrad(Method):
    spec = METHOD_SPECS["smoothgrad"]

    def attribute(self, net, x, target, params) -> MethodOutput:
        n, size = params["n"], batch_size_for(x.device, backward=True)
        maps = []
        for i in range(x.shape[0]):
            sigma = params["noise"] * float(x[i].max() - x[i].min())
            generator = torch.Generator().manual_seed(params["seed"])
            noise = torch.randn((n, *x.shape[1:]), generator=generator).to(x.device, x.dtype) * sigma
            total = torch.zeros_like(x[i])
            for start in range(0, n, size):
                rows = x[i : i + 1] + noise[start : start + size]
                grads, _ = input_gradients(net, rows, target[i].expand(rows.shape[0]))
                total += grads.abs().sum(dim=0)
            maps.append((total / n).amax(dim=0))
        comparison = torch.stack(maps)
        return MethodOutput(raw=comparison, comparison=comparison)
