"""Forward-only scoring of many perturbed copies of one input, in batches sized for the device.

RISE masks, LIME samples, occlusion windows and the insertion/deletion curves all need the model's
score on thousands of perturbed inputs and no gradients. They generate their inputs lazily, a batch
at a time (`make_batch(start, stop)`), so memory stays at one batch whatever the number of inputs.

Batch size, one rule for every method (measured on this machine's 2 cores, EfficientNet-Lite0 at
224 x 224, channels-last, BatchNorm folded; ms per image, best of 8 interleaved): forward 12.4 / 9.2 /
8.6 / 9.7 / 11.7 at batch 1 / 2 / 4 / 8 / 16; forward+backward 26.5 / 21.1 / 18.2 / 26.3 / 32.8 (past
batch 4 the activations leave the cache). Re-measured after every padding was inlined (best of 4
rounds): forward 7.3 / 5.8 / 5.0 / 5.2 / 5.4, forward+backward 18.9 / 17.3 / 16.5 / 15.2 / 18.5; an
isolated batch of 8 was then the fastest forward+backward, but inside a method it was not: XRAI's 200
passes took 4.4-4.6 s at batch 8 and 3.7-4.3 s at batch 4 (three interleaved runs). So 4 on CPU for
both; on CUDA 64. On CPU batches are laid out
channels-last (`fast_layout`): oneDNN's convolutions, depthwise ones above all, ran about twice as
fast per image that way here; the values are the same up to float rounding.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

CPU_FORWARD_BATCH = 4
CPU_BACKWARD_BATCH = 4
CUDA_BATCH = 64
_batch_cap: list[int] = []


def batch_size_for(device: torch.device | str, requested: int | None = None, *, backward: bool = False) -> int:
    """Rows per pass: `requested` when given (>= 1), else the device default (CPU: 4 for forward-only
    and for forward+backward passes; CUDA: 64); never more than a `batch_size_limited` cap."""
    if requested:
        size = max(1, int(requested))
    elif torch.device(device).type == "cuda":
        size = CUDA_BATCH
    else:
        size = CPU_BACKWARD_BATCH if backward else CPU_FORWARD_BATCH
    return min([size, *_batch_cap])


@contextlib.contextmanager
def batch_size_limited(limit: int) -> Iterator[None]:
    """Within the block no pass of any method takes more than `limit` rows (the worker retries a CUDA
    out-of-memory error with half the batch)."""
    _batch_cap.append(max(1, int(limit)))
    try:
        yield
    finally:
        _batch_cap.pop()


def device_of(net: nn.Module, fallback: torch.Tensor | None = None) -> torch.device:
    for parameter in net.parameters():
        return parameter.device
    return fallback.device if fallback is not None else torch.device("cpu")


@torch.no_grad()
def scores_batched(
    net: nn.Module,
    make_batch: Callable[[int, int], torch.Tensor],
    count: int,
    target: int,
    *,
    probabilities: bool = True,
    batch_size: int | None = None,
) -> torch.Tensor:
    """count-vector (float32, on the net's device): the target's softmax probability (or its logit when
    `probabilities` is False) for inputs make_batch(0, b), make_batch(b, 2b), ... up to `count`."""
    size = batch_size_for(device_of(net), batch_size)
    out = [batch_scores(net, make_batch(start, stop), target, probabilities) for start, stop in spans(count, size)]
    return torch.cat(out) if out else torch.empty(0)


def fast_layout(inputs: torch.Tensor) -> torch.Tensor:
    """4-D CPU batches in channels-last memory format (same values, faster convolutions)."""
    if inputs.dim() == 4 and inputs.device.type == "cpu":
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def spans(count: int, size: int) -> list[tuple[int, int]]:
    """[(0, size), (size, 2 size), ..., (k size, count)]."""
    return [(start, min(start + size, count)) for start in range(0, count, size)]


@torch.no_grad()
def batch_scores(net: nn.Module, inputs: torch.Tensor, target: int, probabilities: bool = True) -> torch.Tensor:
    """One forward: the target's softmax probability (or logit) for each input row, float32."""
    logits = net(fast_layout(inputs))
    if probabilities:
        return logits.softmax(dim=1)[:, target].float()
    return logits[:, target].float()
