"""Inference-time simplifications of a network that leave its function unchanged (up to float rounding).

Every pass of every method runs through the model, so its per-pass cost is the platform's cost. On
EfficientNet-Lite0 (CPU, channels-last, batch 4) a third of a forward pass was spent outside the
convolutions: eval-mode BatchNorm (an affine map per channel) and the zero padding that TensorFlow's
'SAME' convolutions add before every convolution as a separate copy.

- `conv_bn_fold`: an eval-mode BatchNorm after a convolution is folded into the convolution's weight
  and bias (`torch.nn.utils.fusion.fuse_conv_bn_weights`) and replaced by `nn.Identity`, so the module
  tree keeps its names and a hook on the old BatchNorm still sees the same values.
- `same_padding_inline`: a static zero padding becomes the convolution's own `padding`. A symmetric
  one moves as it is. An asymmetric one (TensorFlow pads the stride-2 layers one pixel more at the
  bottom and right) becomes a symmetric padding of the larger side and a kernel with as many zero
  taps in front (a 3 x 3 kernel padded (0, 1) is a 4 x 4 kernel with a zero first row and column,
  padded (1, 1)): every output sums the same products plus zeros, so the values are the same.
- EfficientNet's ReLU6 activations then run in place in forward-only passes (each follows a
  convolution; `ReLU6InPlace`).

Measured (per image at batch 4 on this 2-core CPU, best of 10, interleaved): folding and inlining the
symmetric paddings made forward ~17% and forward+backward ~22% faster, the in-place ReLU6 forward ~8%
more; inlining the five asymmetric paddings then forward 6.3 -> 5.2 ms and forward+backward 17.8 ->
16.5 ms (best of 6, three interleaved rounds; at batch 8 forward 7.3 -> 5.4 ms), logits unchanged to
the last bit. Logits and input gradients within 1e-4 of the unfolded network
(tests/explain/test_network_folding.py). Only for networks in eval mode: a network being trained would need its BatchNorm.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def conv_bn_fold(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    """Fold `parent.<bn_name>` (eval-mode BatchNorm2d) into `parent.<conv_name>` (Conv2d, in place)."""
    conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"cannot fold {type(bn).__name__} {bn_name!r} into {type(conv).__name__} {conv_name!r}")
    if bn.training or conv.training:
        raise ValueError("fold BatchNorm only into a network in eval mode")
    with torch.no_grad():
        weight, bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
        )
    conv.weight = nn.Parameter(weight.detach(), requires_grad=conv.weight.requires_grad)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=conv.weight.requires_grad)
    setattr(parent, bn_name, nn.Identity())


def same_padding_inline(conv: nn.Conv2d) -> bool:
    """When `conv.static_padding` (EfficientNet's Conv2dStaticSamePadding) is a ZeroPad2d and the
    convolution itself pads nothing, move the padding into the convolution. An axis padded unequally
    (lo, hi) is padded max(lo, hi) on both sides and the kernel gets |hi - lo| zero taps on the side
    that was padded less (needs dilation 1). True when moved."""
    pad = getattr(conv, "static_padding", None)
    if not isinstance(pad, nn.ZeroPad2d) or any(conv.padding):
        return False
    left, right, top, bottom = pad.padding
    if (left != right or top != bottom) and tuple(conv.dilation) != (1, 1):
        return False
    # F.pad order: (before, after) of the last axis (width), then of the height
    taps = (max(right - left, 0), max(left - right, 0), max(bottom - top, 0), max(top - bottom, 0))
    if any(taps):
        with torch.no_grad():
            weight = nn.functional.pad(conv.weight, taps).contiguous()
        conv.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
        conv.kernel_size = tuple(weight.shape[-2:])
    conv.padding = (max(top, bottom), max(left, right))
    conv.static_padding = nn.Identity()
    return True


def efficientnet_simplified(net: nn.Module) -> dict[str, int]:
    """EfficientNet(-Lite) from `efficientnet_lite_pytorch`, in eval mode: every conv + BatchNorm pair of
    the stem, the blocks and the head folded, every static padding inlined. Returns what was changed."""
    net.eval()
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for parent, conv_name, bn_name in pairs:
        conv_bn_fold(parent, conv_name, bn_name)
    inlined = sum(same_padding_inline(module) for module in net.modules() if isinstance(module, nn.Conv2d))
    # With BatchNorm gone every ReLU6 follows a convolution, whose backward needs its input and not
    # its output, so the activation can overwrite the output in place in a forward-only pass
    replaced: dict[int, ReLU6InPlace] = {}
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.ReLU6:  # a shared module stays shared
                setattr(parent, name, replaced.setdefault(id(child), ReLU6InPlace()))
    return {"batchnorm_folded": len(pairs), "padding_inlined": inlined, "activations_in_place": len(replaced)}


class ReLU6InPlace(nn.ReLU6):
    """nn.ReLU6 that overwrites its input when autograd does not record it (forward-only passes: ~8%
    faster per image at batch 4) and returns a new tensor when it does: recorded, an in-place
    activation made autograd copy the tensor first, and forward+backward ran 6-9% slower (median of
    40 passes at batch 4, interleaved, twice). Same values and gradients as nn.ReLU6."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        recorded = torch.is_grad_enabled() and input.requires_grad
        return nn.functional.hardtanh(input, 0.0, 6.0, inplace=not recorded)
