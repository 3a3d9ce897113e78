"""Training one copy of a model toward human maps (or, with alignment weight 0, the control).

Determinism and resumption: epoch e's data order and every random draw inside it (dropout, drop
connect) come from a seed derived from (seed, e) alone, set inside `torch.random.fork_rng` (the
caller's global RNG is left as it was). After each epoch the model, the optimizer and the history go
to `run_dir/checkpoint.pt` (written to a temporary file, then renamed: a crash never leaves half a
checkpoint). A later call with the same fingerprint loads it and continues at the next epoch, so an
interrupted or redelivered run ends with the weights an uninterrupted one would have (on the CPU to
the bit; on CUDA up to its non-deterministic kernels). A checkpoint with another fingerprint is
refused, never overwritten.

Weight decay: AdamW's decoupled decay on convolution and linear weights (tensors of 2+ dims), none on
biases and normalisation parameters; the loss itself holds no L2 term (one of the two, not both).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..methods.batching import fast_layout
from .double_backward import double_backward_prepared
from .harmonization import (
    alignment_term,
    full_precision,
    input_gradient_saliency,
    labelled_cross_entropy,
    log_probability_gradients,
    outside_gradient_penalty,
)
from .params import FinetuneParams

CPU_BATCH = 8
CUDA_BATCH = 32
CHECKPOINT_FORMAT = 1

Progress = Callable[[dict], None]


class CheckpointMismatch(ValueError):
    """The out dir holds a checkpoint of another run (other data, model or parameters)."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the run, epoch and step."""


def batch_size_for(params: FinetuneParams, device: torch.device) -> int:
    if params.batch_size:
        return params.batch_size
    return CUDA_BATCH if device.type == "cuda" else CPU_BATCH


def _cuda_index(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch` (0-based) of a run seeded `seed`: the same for the control."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def optimizer_for(net: nn.Module, params: FinetuneParams) -> torch.optim.AdamW:
    trainable = [p for p in net.parameters() if p.requires_grad]
    decayed = [p for p in trainable if p.dim() >= 2]
    plain = [p for p in trainable if p.dim() < 2]
    groups = [{"params": decayed, "weight_decay": params.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=params.learning_rate)


def train_mode(net: nn.Module, batchnorm: str) -> None:
    """net.train(); with batchnorm "frozen" every BatchNorm layer stays in eval mode (its running
    statistics are used and kept), its affine parameters still train."""
    net.train()
    if batchnorm == "frozen":
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def step_losses(net: nn.Module, batch: dict, params: FinetuneParams, alignment_weight: float,
                device: torch.device) -> dict[str, torch.Tensor]:
    """{"loss", "cross_entropy", "alignment"} of one batch (alignment absent when its weight is 0:
    the control then runs a plain forward pass; the same data and random draws)."""
    images = fast_layout(batch["image"].to(device, non_blocking=True))
    labels = batch["label"].to(device, non_blocking=True)
    amp = params.mixed_precision and device.type == "cuda"
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
        if alignment_weight == 0:
            logits, gradient = net(images), None
        elif params.loss == "harmonization":
            logits, gradient, usable = input_gradient_saliency(net, images, labels, unlabelled=params.unlabelled)
        else:
            logits, gradient = log_probability_gradients(net, images)
    ce = labelled_cross_entropy(logits, labels, params.label_smoothing)
    if gradient is None:
        return {"loss": ce, "cross_entropy": ce}
    human = batch["human_map"][:, 0].to(device, non_blocking=True).float()
    weights = batch["has_map"].to(device, non_blocking=True).float()
    gradient = full_precision(gradient).float()
    if params.loss == "harmonization":
        align = alignment_term(gradient, human, weights * usable.float())
    else:
        align = outside_gradient_penalty(gradient, human, weights)
    return {"loss": ce + alignment_weight * align, "cross_entropy": ce, "alignment": align}


def checkpoint_load(path: Path, fingerprint: str, net: nn.Module, optimizer) -> tuple[int, list[dict]]:
    """(epochs done, history) from `path` into net and optimizer; (0, []) when there is none."""
    if not path.exists():
        return 0, []
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
        raise CheckpointMismatch(f"{path} belongs to another run (other data, model or parameters); "
                                 "use another out dir or remove it")
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"]), list(state["history"])


def checkpoint_save(path: Path, fingerprint: str, net: nn.Module, optimizer, epoch: int, history: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    state = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": epoch, "history": history,
             "model": net.state_dict(), "optimizer": optimizer.state_dict()}
    torch.save(state, partial)
    os.replace(partial, path)


def train_run(net: nn.Module, data: Dataset, indices: list[int], params: FinetuneParams, *, alignment_weight: float,
              run_dir: Path, fingerprint: str, device: torch.device, name: str,
              progress: Progress | None = None, steps_before: int = 0, steps_total: int = 0) -> list[dict]:
    """Train `net` (on `device`, in place; `double_backward_prepared` first) for params.epochs over
    data[indices]; returns the history,
    one dict per epoch: epoch (1-based), images, loss, cross_entropy, alignment (means over steps;
    alignment None for the control), seconds (this process's time for that epoch)."""
    double_backward_prepared(net)
    optimizer = optimizer_for(net, params)
    checkpoint = Path(run_dir) / "checkpoint.pt"
    done, history = checkpoint_load(checkpoint, fingerprint, net, optimizer)
    size = batch_size_for(params, device)
    steps = -(-len(indices) // size)
    for epoch in range(done, params.epochs):
        started = time.perf_counter()
        sums = {"loss": 0.0, "cross_entropy": 0.0, "alignment": 0.0}
        with torch.random.fork_rng(devices=_cuda_index(device)):
            torch.manual_seed(epoch_seed(params.seed, epoch))
            order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(epoch_seed(params.seed, epoch)))
            loader = DataLoader(data, batch_size=size, sampler=[indices[i] for i in order.tolist()],
                                num_workers=params.workers, pin_memory=device.type == "cuda")
            train_mode(net, params.batchnorm)
            for step, batch in enumerate(loader, start=1):
                parts = step_losses(net, batch, params, alignment_weight, device)
                optimizer.zero_grad(set_to_none=True)
                parts["loss"].backward()
                optimizer.step()
                values = {key: float(value.detach()) for key, value in parts.items()}
                if not np.isfinite(values["loss"]):
                    raise TrainingDiverged(f"{name}: the loss became {values['loss']} at epoch {epoch + 1}, step {step}; "
                                           "lower learning_rate or alignment_weight")
                for key, value in values.items():
                    sums[key] += value
                if progress:
                    progress({"stage": "train", "run": name, "epoch": epoch + 1, "epochs": params.epochs, "step": step,
                              "steps": steps, "global_step": steps_before + epoch * steps + step, "total_steps": steps_total,
                              **values})
        history.append({"epoch": epoch + 1, "images": len(indices), "seconds": time.perf_counter() - started,
                        "loss": sums["loss"] / steps, "cross_entropy": sums["cross_entropy"] / steps,
                        "alignment": sums["alignment"] / steps if alignment_weight else None})
        checkpoint_save(checkpoint, fingerprint, net, optimizer, epoch + 1, history)
        if progress:
            progress({"stage": "checkpoint", "run": name, "epoch": epoch + 1, "epochs": params.epochs, "path": str(checkpoint)})
    net.eval()
    return history
