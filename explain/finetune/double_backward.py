"""Faster second-order passes: the input-gradient losses differentiate the network's backward pass.

Two of PyTorch's double-backward formulas are slow on the networks the platform trains (profiled on
EfficientNet-Lite0 at 224 px, CPU, batch 2: 5.3 s per step, 17x the forward pass):

- a grouped (depthwise) convolution's double backward computes its weight term one group at a time
  (`_convolution_double_backward`): 9035 convolution calls per step, a third of the time;
- BatchNorm's double backward (`native_batch_norm_backward` differentiated) took another third, even
  in eval mode, where BatchNorm is only a per-channel affine map.

`double_backward_prepared(net)` gives such modules (in place) a forward with the same values whose
derivatives are ordinary first-order operations: a grouped convolution whose backward is a
transposed convolution (so the double backward is that convolution's own backward, all groups in one
call); a BatchNorm in eval mode computed as x * scale + shift from its running statistics (a module in
train mode keeps PyTorch's own forward). Parameters, buffers and `state_dict` are unchanged, and so
are values and gradients up to float rounding (tests/explain/test_finetune_double_backward.py).
"""
from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn


class _GroupedConv2d(torch.autograd.Function):
    """conv2d whose input gradient is a differentiable transposed convolution."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, groups, bias is not None)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups, has_bias = ctx.conf
        # under autocast the forward ran in a lower precision than the saved tensors: match the gradient's
        x, weight = x.to(grad.dtype), weight.to(grad.dtype)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            extra = [x.shape[2 + i] - ((grad.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (weight.shape[2 + i] - 1) + 1)
                     for i in range(2)]
            grad_x = F.conv_transpose2d(grad, weight, None, stride, padding, tuple(extra), groups, dilation)
        if ctx.needs_input_grad[1] and _engine_needs(ctx.saved_tensors[1]):
            grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad, stride, padding, dilation, groups)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None


def _engine_needs(tensor: torch.Tensor) -> bool:
    """Whether the running backward pass uses a gradient for `tensor`: the input-gradient pass
    (autograd.grad with respect to the images) does not use the weights', and skipping them saved
    the depthwise weight gradients there. True when PyTorch cannot say (its private helpers)."""
    try:
        from torch.autograd.graph import _get_grad_fn_or_grad_acc

        return bool(torch._C._will_engine_execute_node(_get_grad_fn_or_grad_acc(tensor)))
    except (AttributeError, ImportError, RuntimeError):
        return True


def _grouped_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    padding = getattr(self, "static_padding", None)
    if padding is not None:  # EfficientNet's Conv2dStaticSamePadding pads first
        x = padding(x)
    return _GroupedConv2d.apply(x, self.weight, self.bias, tuple(self.stride), tuple(self.padding), tuple(self.dilation), self.groups)


def _affine_forward(self: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    if self.training or self.running_mean is None:
        return type(self).forward(self, x)
    scale = torch.rsqrt(self.running_var + self.eps)
    shift = -self.running_mean * scale
    if self.weight is not None:
        scale, shift = scale * self.weight, shift * self.weight + self.bias
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return x * scale.view(shape).to(x.dtype) + shift.view(shape).to(x.dtype)


def double_backward_prepared(net: nn.Module) -> dict[str, int]:
    """Give grouped Conv2d (zero padding, numeric padding) and BatchNorm modules the forwards above;
    returns how many of each were changed. Idempotent."""
    counts = {"grouped_conv": 0, "batchnorm": 0}
    for module in net.modules():
        if "forward" in vars(module):
            continue
        if (isinstance(module, nn.Conv2d) and module.groups > 1 and module.padding_mode == "zeros"
                and not isinstance(module.padding, str) and type(module).forward in (nn.Conv2d.forward, _static_forward(module))):
            module.forward = types.MethodType(_grouped_forward, module)
            counts["grouped_conv"] += 1
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            module.forward = types.MethodType(_affine_forward, module)
            counts["batchnorm"] += 1
    return counts


def _static_forward(module: nn.Module):
    """The forward of EfficientNet's Conv2dStaticSamePadding (pad, then a plain conv2d), else None."""
    kind = type(module)
    return kind.forward if kind.__name__ == "Conv2dStaticSamePadding" and hasattr(module, "static_padding") else None
