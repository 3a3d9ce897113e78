"""Grad-CAM (Selvaraju et al., ICCV 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization").

weights_k = spatial mean of d logit_c / d A_k; CAM = sum_k weights_k A_k over the target layer's
channels. raw: the signed CAM at the layer's resolution; comparison: ReLU(CAM) (as Captum's
`LayerGradCam(relu_attributions=True)`). Both are upsampled bilinearly to the stimulus by the pipeline.
Default layer: `features`, the conventional last conv map (on EfficientNet-Lite0 the post-ReLU6
1280 x 7 x 7 output of `extract_features`).
"""
from __future__ import annotations

import torch

from ..method_catalogue import METHOD_SPECS
from .base import InvalidParams, Method, MethodOutput, activations_captured, module_get, target_scores


class GradCAM(Method):
    spec = METHOD_SPECS["gradcam"]
    batches_across_inputs = True

    def attribute(self, net, x, target, params) -> MethodOutput:
        layer = module_get(net, params["layer"])
        with torch.enable_grad(), activations_captured(layer) as store:
            logits = net(x)
            activations = store["activations"]
            (grads,) = torch.autograd.grad(target_scores(logits, target).sum(), activations)
        cam = grad_cam(activations.detach(), grads, params["layer"])
        return MethodOutput(raw=cam, comparison=cam.clamp(min=0), logits=logits.detach())


def grad_cam(activations: torch.Tensor, grads: torch.Tensor, layer: str) -> torch.Tensor:
    """B x h x w signed CAM from a layer's B x C x h x w activations and the target logit's gradient
    w.r.t. them: sum_k mean_ij(grad_k) A_k."""
    if activations.dim() != 4:
        shape = tuple(activations.shape)
        raise InvalidParams(f"layer {layer!r} outputs shape {shape}; Grad-CAM needs N x C x H x W")
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return (weights * activations).sum(dim=1)
