"""Guided Grad-CAM (Selvaraju et al., ICCV 2017, "Grad-CAM: Visual Explanations from Deep Networks
via Gradient-based Localization", section 3.1).

Guided Backprop (`guided_backprop`, correct on ReLU6 networks) times Grad-CAM: ReLU(CAM) at the
`layer`, upsampled to the model's input size (`upsample`: bilinear as in the paper; Captum's
`GuidedGradCam` defaults to nearest), multiplied into every channel. 2 forward + 2 backward passes.

raw: at each pixel the channel of largest magnitude, sign kept (B x h x w, model input pixels);
comparison: its absolute value (max over channels of |.|).
"""
from __future__ import annotations

import torch.nn.functional as F

from .base import InvalidParams, Method, MethodOutput, channel_extreme
from .gradcam import GradCAM
from .guided_backprop import guided_gradients

UPSAMPLE_MODES = ("bilinear", "nearest", "bicubic")


class GuidedGradCAM(Method):
    key = "guided_gradcam"
    version = "1"
    signed = True
    batches_across_inputs = True
    defaults = {"layer": "features", "upsample": "bilinear"}
    docs = {
        "layer": "dotted name of the Grad-CAM layer (default: the last conv map)",
        "upsample": "how the CAM is resized to the input: " + ", ".join(UPSAMPLE_MODES) + " (paper: bilinear)",
    }

    def params_check(self, params) -> None:
        if params["upsample"] not in UPSAMPLE_MODES:
            raise InvalidParams(f"guided_gradcam: upsample must be one of {', '.join(UPSAMPLE_MODES)}")

    def attribute(self, net, x, target, params) -> MethodOutput:
        cam = GradCAM().attribute(net, x, target, {"layer": params["layer"]})
        grads, _ = guided_gradients(net, x, target)
        mode = params["upsample"]
        align = None if mode == "nearest" else False
        weights = F.interpolate(cam.comparison.unsqueeze(1), size=x.shape[-2:], mode=mode, align_corners=align)
        raw = channel_extreme(grads * weights)
        return MethodOutput(raw=raw, comparison=raw.abs(), logits=cam.logits)
