"""Guided Grad-CAM (Selvaraju et al., ICCV 2017, "Grad-CAM: Visual Explanations from Deep Networks
via Gradient-based Localization", section 3.1).

Guided Backprop (`guided_backprop`, correct on ReLU6 networks) times Grad-CAM: ReLU(CAM) at the
`layer`, upsampled to the model's input size (`upsample`: bilinear as in the paper; Captum's
`GuidedGradCam` defaults to nearest), multiplied into every channel. One forward pass,
back-propagated twice: through the head to the layer with the plain rule (the CAM weights), then to
the input with the guided rule; the first backward costs only the head's, the second one backward
pass (Captum's GuidedGradCam runs two forward and two full backward passes).

raw: at each pixel the channel of largest magnitude, sign kept (B x h x w, model input pixels);
comparison: its absolute value (max over channels of |.|).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..method_catalogue import METHOD_SPECS, UPSAMPLE_MODES  # noqa: F401
from .base import Method, MethodOutput, channel_extreme, module_get, target_scores
from .batching import fast_layout
from .gradcam import grad_cam
from .guided_backprop import guided


class GuidedGradCAM(Method):
    spec = METHOD_SPECS["guided_gradcam"]
    batches_across_inputs = True

    def attribute(self, net, x, target, params) -> MethodOutput:
        layer, store = module_get(net, params["layer"]), {}

        def keep(_module, _inputs, output):
            store["activations"] = output
            return output.clone()  # an in-place operation after the layer must not overwrite it

        with torch.enable_grad(), guided(net) as guidance:
            handle = layer.register_forward_hook(keep)
            try:
                leaf = fast_layout(x.detach()).requires_grad_(True)
                logits = net(leaf)
            finally:
                handle.remove()
            score = target_scores(logits, target).sum()
            activations = store["activations"]
            # the CAM weights are the plain gradient at the layer (a backward through the head only) ...
            guidance.active = False
            (layer_grads,) = torch.autograd.grad(score, activations, retain_graph=True)
            # ... and the same forward pass, back-propagated again by the guided rule, gives the input
            guidance.active = True
            (grads,) = torch.autograd.grad(score, leaf)
        cam = grad_cam(activations.detach(), layer_grads, params["layer"]).clamp(min=0)
        mode = params["upsample"]
        align = None if mode == "nearest" else False
        weights = F.interpolate(cam.unsqueeze(1), size=x.shape[-2:], mode=mode, align_corners=align)
        raw = channel_extreme(grads * weights)
        return MethodOutput(raw=raw, comparison=raw.abs(), logits=logits.detach())
